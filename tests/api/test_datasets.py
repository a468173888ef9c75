"""Uploads, and every bad upload: a clear 4xx that stores nothing."""

import gzip
import io
import os
import struct
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image
from sklearn.datasets import load_breast_cancer

from tests.conftest import new_api_key, running_api
from tests.helpers import IDX_NAMES, learnable_images, write_idx

RNG = np.random.default_rng(7)
LABELS = RNG.integers(0, 10, size=60).astype(np.uint8)
IMAGES = learnable_images(LABELS, RNG)


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def png(array: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def csv_layout(count: int = 30, **overrides: bytes) -> dict[str, bytes]:
    rows = ["filename,label"] + [f"images/{i}.png,{LABELS[i]}" for i in range(count)]
    members = {"data/train.csv": "\n".join(rows).encode()}
    members |= {f"data/images/{i}.png": png(IMAGES[i]) for i in range(count)}
    return members | overrides


def idx_files(tmp_path: Any) -> list[tuple[str, tuple[str, bytes]]]:
    arrays = {"x_train": IMAGES[:50], "y_train": LABELS[:50], "x_test": IMAGES[50:], "y_test": LABELS[50:]}
    files = []
    for part, name in IDX_NAMES.items():
        write_idx(tmp_path / name, arrays[part])
        files.append(("file", (name, (tmp_path / name).read_bytes())))
    return files


def upload(client: httpx.Client, files: Any, **data: str) -> httpx.Response:
    return client.post("/v1/datasets", files=files, data=data)


def count(client: httpx.Client) -> int:
    return len(client.get("/v1/datasets").json())


def test_an_npz_uploads_with_its_description(client: httpx.Client) -> None:
    response = upload(client, {"file": ("d.npz", npz(x_train=IMAGES, y_train=LABELS))}, name="blocks")
    assert response.status_code == 201, response.text
    info = response.json()
    assert response.headers["location"] == f"/v1/datasets/{info['id']}"
    assert (info["name"], info["train_samples"], info["test_samples"], info["test_held_out"]) == (
        "blocks",
        54,
        6,
        True,
    )
    assert (info["kind"], info["shape"], info["labels"]) == ("images", [28, 28, 1], "classes")
    assert [c["name"] for c in info["classes"]] == [str(index) for index in range(10)]
    assert sum(c["count"] for c in info["classes"]) == 54
    assert client.get(f"/v1/datasets/{info['id']}").json() == info


def test_the_four_idx_files_upload(client: httpx.Client, tmp_path: Any) -> None:
    response = upload(client, idx_files(tmp_path))
    assert response.status_code == 201, response.text
    assert (response.json()["train_samples"], response.json()["test_held_out"]) == (50, False)


def test_a_zip_of_the_csv_layout_uploads(client: httpx.Client) -> None:
    response = upload(client, {"file": ("d.zip", zipped(csv_layout()))})
    assert response.status_code == 201, response.text
    assert response.json()["train_samples"] == 27


def test_images_of_another_size_or_mode_need_convert(client: httpx.Client) -> None:
    big = {"data/images/3.png": png(np.zeros((32, 32), np.uint8), "RGB")}
    refused = upload(client, {"file": ("d.zip", zipped(csv_layout(**big)))})
    assert refused.status_code == 422
    assert "data/images/3.png is 32x32, the first image 28x28" in refused.json()["detail"]
    converted = upload(client, {"file": ("d.zip", zipped(csv_layout(**big)))}, convert="true")
    assert converted.status_code == 201
    assert converted.json()["shape"] == [28, 28, 1]


def test_colour_images_stay_colour(client: httpx.Client) -> None:
    rng = np.random.default_rng(5)
    colour = {
        f"data/images/{i}.png": png(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), "RGB")
        for i in range(30)
    }
    answer = upload(client, {"file": ("d.zip", zipped(csv_layout(**colour)))})
    assert answer.status_code == 201, answer.text
    assert answer.json()["shape"] == [16, 16, 3]


def test_a_huge_image_is_refused_from_its_header_before_it_is_decoded(client: httpx.Client) -> None:
    huge = {"data/images/0.png": png(np.zeros((9000, 9000), np.uint8))}  # 81 MB of pixels, tiny as PNG
    before = count(client)
    refused = upload(client, {"file": ("d.zip", zipped(csv_layout(**huge)))})
    assert refused.status_code == 422
    assert "data/images/0.png is 9000x9000" in refused.json()["detail"]
    assert count(client) == before


def zip_slip() -> bytes:
    return zipped({"../escape/train.csv": b"filename,label\n", "ok.txt": b"x"})


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x_train.npy", b"\0" * 60_000_000)  # the suite's API allows 50 MB expanded
    return buffer.getvalue()


def gzip_bomb_idx(tmp_path: Any) -> list[tuple[str, tuple[str, bytes]]]:
    """The four IDX files, the training images a gzip of 60 MB of pixels (60 KB sent)."""
    header = bytes([0, 0, 8, 3]) + struct.pack(">III", 76_531, 28, 28)
    bomb = gzip.compress(header + bytes(76_531 * 28 * 28))
    return [("file", ("train-images-idx3-ubyte.gz", bomb)), *idx_files(tmp_path)[1:]]


def lying_zip() -> bytes:
    """A zip whose one member declares 1,000 bytes and holds 60 MB."""
    data = bytearray(zip_bomb())
    for sizes in (struct.pack("<I", 60_000_000),):
        at = data.find(sizes)
        while at != -1:
            data[at : at + 4] = struct.pack("<I", 1000)
            at = data.find(sizes, at + 4)
    return bytes(data)


def test_a_gzip_bomb_is_refused_while_it_expands(client: httpx.Client, tmp_path: Any) -> None:
    before = count(client)
    refused = upload(client, gzip_bomb_idx(tmp_path))
    assert refused.status_code == 422
    assert "expands past" in refused.json()["detail"]
    assert count(client) == before


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"file": ("d.zip", b"PK\x03\x04 broken")}, "cannot be read"),
        ({"file": ("d.zip", lying_zip())}, "cannot be read"),
        ({"file": ("d.npz", b"not a zip at all")}, "cannot be read"),
        ({"file": ("d.zip", zip_slip())}, "leave the archive"),
        ({"file": ("d.zip", zip_bomb())}, "expands past"),
        ({"file": ("d.zip", zipped(csv_layout(**{"data/images/2.png": b"garbage"})))}, "not an image"),
        (
            {
                "file": (
                    "d.zip",
                    zipped(csv_layout(**{"data/train.csv": b"filename,label\nimages/99.png,1\n"})),
                )
            },
            "no file",
        ),
        ({"file": ("d.npz", npz(x_train=IMAGES, y_train=LABELS[:-5]))}, "60 images but 55 labels"),
        (
            {"file": ("d.npz", npz(x_train=IMAGES, y_train=LABELS.astype(np.int64) - 1))},
            "classes are 0 to K-1",
        ),
        ({"file": ("d.npz", npz(x_train=IMAGES, y_train=LABELS * 0))}, "K from 2 to 1000"),
        ({"file": ("d.npz", npz(x_train=IMAGES[:, :4, :4], y_train=LABELS))}, "height and width go from 8"),
        (
            {"file": ("d.npz", npz(x_train=IMAGES[..., None].repeat(2, -1), y_train=LABELS))},
            "1 or 3 channels",
        ),
        ({"file": ("d.npz", npz(x_train=np.full((60, 3), np.nan), y_train=LABELS))}, "not a finite number"),
        ({"file": ("d.npz", npz(y_train=LABELS))}, "lacks x_train"),
        ({"file": ("notes.txt", b"hello")}, "upload an .npz"),
    ],
    ids=[
        "bad-zip",
        "lying-zip",
        "bad-npz",
        "zip-slip",
        "zip-bomb",
        "bad-image",
        "missing-file",
        "missing-labels",
        "label-range",
        "one-class",
        "small-images",
        "two-channels",
        "nan-feature",
        "no-images",
        "unknown-kind",
    ],
)
def test_a_bad_upload_is_a_422_and_stores_nothing(client: httpx.Client, files: Any, message: str) -> None:
    before = count(client)
    response = upload(client, files)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "file"
    assert count(client) == before


def test_an_upload_over_the_limit_is_a_413(api_url: str, client: httpx.Client) -> None:
    response = upload(client, {"file": ("d.npz", b"\0" * 25_000_000)})  # the suite's API allows 20 MB
    assert response.status_code == 413


def test_datasets_belong_to_their_tenant(client: httpx.Client, other_client: httpx.Client) -> None:
    info = upload(client, {"file": ("d.npz", npz(x_train=IMAGES, y_train=LABELS))}).json()
    assert other_client.get(f"/v1/datasets/{info['id']}").status_code == 404
    spec = {"dataset": {"name": info["id"]}, "resources": {"queue": "gpu"}}
    refused = other_client.post("/v1/jobs", json=spec)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "dataset.name"


def test_a_dataset_in_use_cannot_be_deleted(client: httpx.Client) -> None:
    info = upload(client, {"file": ("d.npz", npz(x_train=IMAGES, y_train=LABELS))}).json()
    job = client.post(
        "/v1/jobs", json={"dataset": {"name": info["id"]}, "resources": {"queue": "gpu"}}
    ).json()
    assert client.delete(f"/v1/datasets/{info['id']}").status_code == 409
    client.post(f"/v1/jobs/{job['id']}/cancel")
    assert client.delete(f"/v1/datasets/{info['id']}").status_code == 204
    assert client.get(f"/v1/datasets/{info['id']}").status_code == 404


@pytest.fixture(scope="module")
def quota_url(settings_env: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**os.environ, "MAX_DATASETS_PER_TENANT": "2", "MAX_DATASET_BYTES_PER_TENANT": "100000"}
    with running_api(env, tmp_path_factory.mktemp("logs") / "quota-api.log") as url:
        yield url


def test_a_tenants_datasets_stay_within_their_quota(quota_url: str, settings_env: Any) -> None:
    headers = {"Authorization": f"Bearer {new_api_key(settings_env, f'quota-{uuid.uuid4().hex[:8]}')}"}
    with httpx.Client(base_url=quota_url, headers=headers, timeout=30) as tenant:
        small = {"file": ("d.npz", npz(x_train=IMAGES, y_train=LABELS))}
        assert [upload(tenant, small).status_code for _ in range(2)] == [201, 201]
        refused = upload(tenant, small)
        assert refused.status_code == 409
        assert "quota of 2" in refused.json()["detail"]
        first = tenant.get("/v1/datasets").json()[0]["id"]
        assert tenant.delete(f"/v1/datasets/{first}").status_code == 204
        rng = np.random.default_rng(9)
        noisy = rng.integers(0, 255, (200, 28, 28), dtype=np.uint8)  # incompressible: over 100 KB stored
        big = upload(tenant, {"file": ("d.npz", npz(x_train=noisy, y_train=rng.integers(0, 10, 200)))})
        assert big.status_code == 409
        assert "over its quota of 100000" in big.json()["detail"]
        assert len(tenant.get("/v1/datasets").json()) == 1


def table_csv(features: np.ndarray, labels: Any, columns: list[str], label: str = "label") -> bytes:
    lines = [",".join([*columns, label])]
    lines += [
        ",".join([*(f"{value:.6g}" for value in row), str(y)])
        for row, y in zip(features, labels, strict=True)
    ]
    return "\n".join(lines).encode()


def test_a_csv_table_uploads_with_its_columns_and_named_classes(client: httpx.Client) -> None:
    cancer = load_breast_cancer()
    names = np.array(cancer.target_names)[cancer.target]
    table = table_csv(cancer.data, names, list(cancer.feature_names), label="diagnosis")
    answer = upload(client, {"file": ("cancer.csv", table)}, label_column="diagnosis")
    assert answer.status_code == 201, answer.text
    info = answer.json()
    assert (info["kind"], info["shape"], info["labels"]) == ("features", [30], "classes")
    assert [c["name"] for c in info["classes"]] == ["benign", "malignant"]
    assert [c["name"] for c in info["columns"]][:2] == ["mean radius", "mean texture"]
    assert info["train_samples"] + info["test_samples"] == len(cancer.data)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ("1.5,,0", "row 3 column 'b' is missing"),
        ("1.5,abc,0", "row 3 column 'b' is 'abc', not a number"),
        ("1.5,2,", "row 3 column 'label' (the label) is missing"),
        ("1.5,2", "row 3 has 2 cells, the header 3"),
    ],
)
def test_a_bad_cell_of_a_table_is_named_by_its_row_and_column(
    client: httpx.Client, cells: str, message: str
) -> None:
    rows = ["a,b,label", "1,2,0", cells] + [f"{i},{i},{i % 2}" for i in range(30)]
    before = count(client)
    refused = upload(client, {"file": ("t.csv", "\n".join(rows).encode())}, label_column="label")
    assert refused.status_code == 422
    assert message in refused.json()["detail"]
    assert count(client) == before


def test_a_table_needs_its_label_column(client: httpx.Client) -> None:
    table = b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, i, i % 2) for i in range(30))
    missing = upload(client, {"file": ("t.csv", table)})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "label_column"
    unknown = upload(client, {"file": ("t.csv", table)}, label_column="y")
    assert "has no column 'y'" in unknown.json()["detail"]


def test_images_in_class_folders(client: httpx.Client) -> None:
    rng = np.random.default_rng(4)
    members = {
        f"pets/{part}/{name}/{index}.png": png(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), "RGB")
        for part, count_of in (("train", 15), ("test", 3))
        for name in ("cat", "dog")
        for index in range(count_of)
    }
    answer = upload(client, {"file": ("pets.zip", zipped(members))})
    assert answer.status_code == 201, answer.text
    info = answer.json()
    assert (info["shape"], info["train_samples"], info["test_samples"]) == ([12, 12, 3], 30, 6)
    assert [(c["name"], c["count"]) for c in info["classes"]] == [("cat", 15), ("dog", 15)]


def test_a_spec_is_checked_against_its_uploaded_datasets_shape(client: httpx.Client) -> None:
    table = b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, i * 2, i % 3) for i in range(40))
    features = upload(client, {"file": ("t.csv", table)}, label_column="label").json()["id"]
    rng = np.random.default_rng(2)
    colour = rng.integers(0, 255, (30, 64, 64, 3), dtype=np.uint8)
    images = upload(client, {"file": ("c.npz", npz(x_train=colour, y_train=rng.integers(0, 2, 30)))}).json()[
        "id"
    ]
    cases = [
        (
            features,
            {"regularization": {"augmentation": {"rotation": 0.1}}},
            "regularization.augmentation.rotation",
        ),
        (features, {"model": {"layers": [{"type": "conv2d", "filters": 2}]}}, "model.layers.0.type"),
        (
            images,
            {"regularization": {"augmentation": {"zca_whitening": True}}},
            "regularization.augmentation.zca_whitening",
        ),
        (
            images,
            {
                "model": {"hidden_layers": [8], "task": "regression"},
                "regularization": {"early_stopping": {"monitor": "val_accuracy"}},
            },
            "regularization.early_stopping.monitor",
        ),
    ]
    for dataset, overrides, field in cases:
        refused = client.post("/v1/jobs", json={"dataset": {"name": dataset}, **overrides})
        assert refused.status_code == 422, (field, refused.text)
        assert refused.json()["errors"][0]["field"] == field
    ok = {
        "dataset": {"name": features},
        "model": {"layers": [{"type": "gaussian_noise", "stddev": 0.1}, {"type": "dense", "units": 4}]},
        "resources": {"queue": "gpu"},
    }
    assert client.post("/v1/jobs", json=ok).status_code == 202


def streamed_gzip(header: bytes, zeros: int) -> bytes:
    """A gzip of ``header`` and ``zeros`` zero bytes, compressed a chunk at a time."""
    packer, parts, chunk = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), [], bytes(1 << 24)
    parts.append(packer.compress(header))
    for _ in range(zeros // len(chunk)):
        parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def measured_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, psutil.Process]]:
    """An API of its own, whose memory the test reads."""
    env = {**os.environ, "MAX_EXPANDED_BYTES": "50000000", "MAX_UPLOAD_BYTES": "20000000"}
    with running_api(env, tmp_path_factory.mktemp("logs") / "measured-api.log") as url:
        port = int(url.rsplit(":", 1)[1])
        (pid,) = {
            c.pid for c in psutil.net_connections("tcp") if c.laddr.port == port and c.status == "LISTEN"
        }
        yield url, psutil.Process(pid)


def test_a_gigabyte_gzip_bomb_leaves_the_apis_memory_bounded(
    measured_api: tuple[str, psutil.Process], settings_env: Any
) -> None:
    url, process = measured_api
    header = bytes([0, 0, 8, 3]) + struct.pack(">III", 1_300_000, 28, 28)
    bomb = streamed_gzip(header, 1 << 30)  # 1 GiB of pixels in about 1 MB
    headers = {"Authorization": f"Bearer {new_api_key(settings_env, 'tests')}"}
    files = [("file", ("train-images-idx3-ubyte.gz", bomb)), ("file", ("train-labels-idx1-ubyte.gz", b"x"))]
    before = process.memory_info().rss
    refused = httpx.post(f"{url}/v1/datasets", files=files, headers=headers, timeout=60)
    assert refused.status_code == 422
    assert "expands past 50000000 bytes" in refused.json()["detail"]
    grown = process.memory_info().rss - before
    assert grown < 200 * 1_048_576, f"the API grew by {grown / 1_048_576:.0f} MiB for a 50 MB budget"
