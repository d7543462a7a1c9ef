"""SyncNet (Chung & Zisserman, ACCV workshops 2016): the audio-visual sync expert behind the AV offset and confidence
metrics; the official syncnet_v2 architecture and weights loader, and a small preset trained on the project's stores.
`SYSTEM` registers its one training stage (it renders nothing: evaluation scores other systems' videos with it)."""
from models.syncnet.stages import SyncNetStage, SyncNetTrainConfig
from models.syncnet.syncnet import INT16_C0_OFFSET, SyncNet, SyncNetConfig, load_syncnet_v2, syncnet_v2_from_state_dict
from models.system import System
from storage.crops import MOUTH

SYSTEM = System(
    name="syncnet",
    paper="Chung, Zisserman. Out of time: automated lip sync in the wild. ACCV workshops 2016",
    stages=(SyncNetStage(),),
    crop=MOUTH,
    metrics=frozenset({"av_offset", "av_confidence"}),
)

__all__ = ["SYSTEM", "SyncNet", "SyncNetConfig", "SyncNetTrainConfig", "load_syncnet_v2", "syncnet_v2_from_state_dict",
           "INT16_C0_OFFSET"]
