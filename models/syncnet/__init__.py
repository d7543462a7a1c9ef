"""SyncNet (Chung & Zisserman, ACCV workshops 2016): the audio-visual sync expert behind the AV offset and confidence
metrics; the official syncnet_v2 architecture and weights loader, and a small preset trained on the project's stores."""
from models.syncnet.syncnet import INT16_C0_OFFSET, SyncNet, SyncNetConfig, load_syncnet_v2, syncnet_v2_from_state_dict

__all__ = ["SyncNet", "SyncNetConfig", "load_syncnet_v2", "syncnet_v2_from_state_dict", "INT16_C0_OFFSET"]
