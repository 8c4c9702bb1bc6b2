"""The ActiveUF environment, its actions, its ansi rendering and the real-data entry points."""
