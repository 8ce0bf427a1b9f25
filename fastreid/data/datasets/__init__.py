"""Re-id datasets: the registry, the base classes and the registered parsers."""
from .bases import Dataset, DatasetNotFoundError, ImageDataset, VideoDataset
from .build import DATASET_REGISTRY, build_dataset, resolve_root
from .cuhk03 import CUHK03
from .custom import CustomReID
from .duke_video import DukeMTMCVidReID
from .ilidsvid import iLIDSVID
from .market1501 import DukeMTMC, Market1501
from .mars import MARS
from .msmt17 import MSMT17
from .prid2011 import PRID2011
from .small_person import CUHK01, CUHKSYSU, GRID, PRID, SenseReID, VIPeR, iLIDS
from .synthetic import SyntheticPerson, make_contact_sheet
from .synthetic_tracklets import SyntheticTracklets
from .university1652 import University1652
from .vehicles import (LargeVehicleID, LargeVeRiWild, MediumVehicleID, MediumVeRiWild, SmallVehicleID,
                       SmallVeRiWild, VehicleID, VeRi, VeRiWild)

# fast-reid's spelling of the CUHK-SYSU class name.
DATASET_REGISTRY.register_alias("cuhkSYSU", "CUHKSYSU")
# torchreid's spelling of the MARS class name.
DATASET_REGISTRY.register_alias("Mars", "MARS")
