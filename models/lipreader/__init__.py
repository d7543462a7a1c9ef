"""The lip reader behind the WER metric: LipNet (Assael, Shillingford, Whiteson, de Freitas 2016), a spatio-temporal
CNN + BiGRU trained with CTC on a fixed mouth box of the store's `face` crop (shared/specs/vougioukas2019-sda.md §8).
`SYSTEM` registers its one training stage ("lipreader"); it renders nothing (like SyncNet): evaluation reads real
and generated faces with `LipReader` and scores them with `tasks.metrics.wer`.

    reader = LipReader.load("<out>/lipreader-step000300.pt", device="cpu")
    reader.read(faces)  # faces uint8 (N, 128, 128, 3) -> Transcript(greedy="bin blue at f two now", snapped=...)
"""
from models.lipreader.data import LipReadingDataset, MouthBox, mouth_box, mouth_frames
from models.lipreader.network import LipNet, LipReaderConfig
from models.lipreader.reader import LipReader, Transcript
from models.lipreader.stages import LipReaderStage, LipReaderTrainConfig
from models.lipreader.text import (ALPHABET, BLANK, GRID_GRAMMAR, GRID_VOCABULARY, NUM_CLASSES, encode,
                                   greedy_decode, snap_to_grammar)
from models.system import System
from storage.crops import FACE

SYSTEM = System(
    name="lipreader",
    paper="Assael, Shillingford, Whiteson, de Freitas. LipNet: end-to-end sentence-level lipreading. 2016",
    stages=(LipReaderStage(),),
    crop=FACE,
    metrics=frozenset({"wer"}),
)

__all__ = ["ALPHABET", "BLANK", "GRID_GRAMMAR", "GRID_VOCABULARY", "LipNet", "LipReader", "LipReaderConfig",
           "LipReaderStage", "LipReaderTrainConfig", "LipReadingDataset", "MouthBox", "NUM_CLASSES", "SYSTEM",
           "Transcript", "encode", "greedy_decode", "mouth_box", "mouth_frames", "snap_to_grammar"]
