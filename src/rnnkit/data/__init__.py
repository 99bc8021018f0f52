"""rnnkit.data: loading series and text, windows, vocabularies, scalers, padding and batching."""

from .batching import PAD_ID, StreamBatcher, minibatches, num_batches, pad_sequences
from .scaling import AffineScaler, MinMaxScaler, StandardScaler, scaler_from_dict
from .series import (
    SeriesData,
    autocorrelation,
    chronological_split,
    detect_season,
    load_series_csv,
    windows,
)
from .text import (
    TOKENIZERS,
    Tokenizer,
    char_tokenize,
    get_tokenizer,
    jieba_tokenize,
    load_labelled,
    load_text,
    whitespace_tokenize,
)
from .vocab import LabelEncoder, Vocabulary

__all__ = [
    "PAD_ID",
    "TOKENIZERS",
    "AffineScaler",
    "LabelEncoder",
    "MinMaxScaler",
    "SeriesData",
    "StandardScaler",
    "StreamBatcher",
    "Tokenizer",
    "Vocabulary",
    "autocorrelation",
    "char_tokenize",
    "chronological_split",
    "detect_season",
    "get_tokenizer",
    "jieba_tokenize",
    "load_labelled",
    "load_series_csv",
    "load_text",
    "minibatches",
    "num_batches",
    "pad_sequences",
    "scaler_from_dict",
    "whitespace_tokenize",
    "windows",
]
