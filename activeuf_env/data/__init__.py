"""Real data: read preference datasets into pools, encode texts and cache their embeddings, write pools back in the
AUF layout, and export collected pairs. The public names of the submodules are re-exported here; the submodules each
do one job (:mod:`~activeuf_env.data.readers` documents the formats read). Importing this package is cheap: the
optional heavy dependencies (transformers, torch, datasets, pyarrow) are imported only when a function needs them.
"""

from activeuf_env.data.assemble import FeatureSpec
from activeuf_env.data.collect import MalformedRowWarning
from activeuf_env.data.embeddings import (
    CACHE_DIR_ENV,
    COMPOSITIONS,
    CacheSpec,
    Composition,
    EmbeddingCache,
    PrecomputedEmbeddings,
    compose_features,
    content_hash,
    default_cache_dir,
    embed_texts,
    encode_pool_texts,
    resolve_cache,
)
from activeuf_env.data.encoders import (
    DEFAULT_MAX_LENGTH,
    Encoder,
    HashingEncoder,
    TextEncoder,
    default_model_path,
    resolve_encoder,
)
from activeuf_env.data.export import (
    BINARIZED_COLUMNS,
    EXPORT_FORMATS,
    ExportFormat,
    export_pairs,
    pairs_to_columns,
    pairs_to_dataset,
    pairs_to_records,
    write_pairs_jsonl,
)
from activeuf_env.data.locate import (
    ALPACA_EVAL_DIRNAME,
    ALPACA_EVAL_FILENAME,
    SHARED_DATA_ENV,
    default_shared_data_dir,
    locate_alpaca_eval,
)
from activeuf_env.data.pool_factory import DatasetPool
from activeuf_env.data.readers import (
    cache_dataset_embeddings,
    load_pool_from_path,
    read_alpaca_eval,
    read_auf_dataset,
    read_multimodel_jsonl,
)
from activeuf_env.data.rows import DEFAULT_SCORE_CLIP, transform_scores
from activeuf_env.data.writers import pool_to_auf_records, write_auf_dataset

__all__ = [
    "ALPACA_EVAL_DIRNAME",
    "ALPACA_EVAL_FILENAME",
    "BINARIZED_COLUMNS",
    "CACHE_DIR_ENV",
    "COMPOSITIONS",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_SCORE_CLIP",
    "EXPORT_FORMATS",
    "SHARED_DATA_ENV",
    "CacheSpec",
    "Composition",
    "DatasetPool",
    "EmbeddingCache",
    "Encoder",
    "ExportFormat",
    "FeatureSpec",
    "HashingEncoder",
    "MalformedRowWarning",
    "PrecomputedEmbeddings",
    "TextEncoder",
    "cache_dataset_embeddings",
    "compose_features",
    "content_hash",
    "default_cache_dir",
    "default_model_path",
    "default_shared_data_dir",
    "embed_texts",
    "encode_pool_texts",
    "export_pairs",
    "load_pool_from_path",
    "locate_alpaca_eval",
    "pairs_to_columns",
    "pairs_to_dataset",
    "pairs_to_records",
    "pool_to_auf_records",
    "read_alpaca_eval",
    "read_auf_dataset",
    "read_multimodel_jsonl",
    "resolve_cache",
    "resolve_encoder",
    "transform_scores",
    "write_auf_dataset",
    "write_pairs_jsonl",
]
