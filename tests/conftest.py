import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
STRUCTURES = [
    "cu_fcc_108",
    "ta_bcc_primitive_1",
    "mg_hcp_triclinic_16",
    "cu_hot_32",
    "benzene_12",
    "c60_60",
    "cu_slab_pbc_TTF_36",
]


@pytest.fixture(scope="session")
def data_dir():
    return DATA


@pytest.fixture(scope="session")
def expected():
    return np.load(DATA / "expected.npz")


@pytest.fixture(scope="session")
def expected_json():
    return json.loads((DATA / "expected.json").read_text())


@pytest.fixture(scope="session")
def crystals():
    """Descriptors of the three crystal fixtures together (the 156 environments of
    expected.json), k=32, rc=5."""
    import atominfo

    return atominfo.descriptors(
        [DATA / "cu_fcc_108.extxyz", DATA / "mg_hcp_triclinic_16.extxyz", DATA / "cu_hot_32.extxyz"]
    )


@pytest.fixture(scope="session")
def molecules():
    """Descriptors of C60 and benzene together, k=32, rc=5."""
    import atominfo

    return atominfo.descriptors([DATA / "c60_60.extxyz", DATA / "benzene_12.extxyz"])
