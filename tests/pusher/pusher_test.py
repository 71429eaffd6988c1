"""The Pusher only pushes blessed models, and a version folder appears all at once."""

import os
import shutil
import time

import pytest

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.pusher import executor as pusher_executor
from components.serving import versions as versions_lib
from support.small_disk import mounted_tmpfs

PUSHER_BLESSINGS = (standard_component_specs.MODEL_BLESSING_KEY, standard_component_specs.INFRA_BLESSING_KEY)


def make_model(tmp_path):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    serving = os.path.join(model.uri, "Format-Serving")
    os.makedirs(os.path.join(serving, "variables"))
    for name in ("saved_model.pb", "variables/variables.index"):
        with open(os.path.join(serving, name), "w") as f:
            f.write(name)
    return model


def make_blessing(tmp_path, blessed, kind=standard_artifacts.ModelBlessing):
    blessing = kind()
    blessing.uri = str(tmp_path)
    os.makedirs(blessing.uri)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def push(tmp_path, blessed, base, infra_blessed=True, blessings=PUSHER_BLESSINGS):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    if not os.path.exists(model.uri):
        make_model(tmp_path)
    runs = len(os.listdir(tmp_path))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed-{runs}")
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    pusher_executor.Executor().Do(
        {
            standard_component_specs.MODEL_KEY: [model],
            **{key: [make_blessing(tmp_path / f"{key}-{runs}", verdict, kind)]
               for key, verdict, kind in ((standard_component_specs.MODEL_BLESSING_KEY, blessed,
                                           standard_artifacts.ModelBlessing),
                                          (standard_component_specs.INFRA_BLESSING_KEY, infra_blessed,
                                           standard_artifacts.InfraBlessing))
               if key in blessings},
        },
        {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
        {standard_component_specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)},
    )
    return pushed


def test_blessed_model_lands_in_an_integer_version_folder(tmp_path):
    base = str(tmp_path / "serving" / "cats")
    pushed = push(tmp_path, True, base)
    [version] = os.listdir(base)
    assert version.isdigit()
    assert sorted(os.listdir(os.path.join(base, version))) == ["saved_model.pb", "variables"]
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == os.path.join(base, version)


def test_unblessed_model_is_not_pushed(tmp_path):
    base = str(tmp_path / "serving" / "cats")
    pushed = push(tmp_path, False, base)
    assert not os.path.exists(base) or os.listdir(base) == []
    assert pushed.get_int_custom_property("pushed") == 0


def test_a_model_the_infra_validator_did_not_bless_is_not_pushed(tmp_path):
    base = str(tmp_path / "serving" / "cats")
    pushed = push(tmp_path, True, base, infra_blessed=False)
    assert pushed.get_int_custom_property("pushed") == 0
    assert not os.path.exists(base)


@pytest.mark.parametrize("missing", PUSHER_BLESSINGS)
def test_the_pusher_refuses_to_run_without_either_blessing(tmp_path, missing):
    with pytest.raises(ValueError, match=f"the Pusher got no {missing}: it pushes only a model the Evaluator"):
        push(tmp_path, True, str(tmp_path / "serving"), blessings=[key for key in PUSHER_BLESSINGS if key != missing])
    assert not os.path.exists(tmp_path / "serving")


def test_versions_increase_and_no_staging_folder_is_left(tmp_path):
    base = str(tmp_path / "serving" / "cats")
    push(tmp_path, True, base)
    push(tmp_path, True, base)
    versions = sorted(os.listdir(base))
    assert len(versions) == 2 and all(v.isdigit() for v in versions)
    assert int(versions[1]) > int(versions[0])


def test_the_new_version_goes_above_every_folder_tf_serving_counts_as_a_version(tmp_path):
    """Broken or not, empty or future-dated: TF Serving's latest policy serves the highest
    number it reads from a folder's name, so the push must land above all of them."""
    base = tmp_path / "serving" / "cats"
    base.mkdir(parents=True)
    (base / "9000000000").mkdir()  # empty: an interrupted copy by another tool
    (base / " 9000000005 ").mkdir()  # TF Serving reads version 9000000005 from this name
    (base / "99999999999999999999").mkdir()  # beyond int64: no version to TF Serving, ignored
    (base / ".9100000000.incomplete").mkdir()  # a staging folder: no version either

    pushed = push(tmp_path, True, str(base))

    assert pushed.get_string_custom_property("pushed_version") == "9000000006"
    assert versions_lib.versions(str(base))[0] == (9000000006, str(base / "9000000006"))


def test_without_versions_the_version_is_the_push_time(tmp_path):
    base = tmp_path / "serving" / "cats"
    base.mkdir(parents=True)
    (base / "-5").mkdir()
    before = int(time.time())
    version = versions_lib.next_version(str(base))
    assert before <= version <= int(time.time())


def test_no_version_above_the_largest_tf_serving_accepts_is_pushed(tmp_path):
    base = tmp_path / "serving" / "cats"
    (base / str(versions_lib.INT64_MAX)).mkdir(parents=True)
    with pytest.raises(versions_lib.PushFailed, match="the highest version TF Serving accepts"):
        versions_lib.next_version(str(base))


@pytest.mark.parametrize("name, version", [
    ("12", 12), ("0012", 12), (" 12\t", 12), ("-3", -3), (str(versions_lib.INT64_MAX), versions_lib.INT64_MAX),
    ("", None), ("+12", None), ("12a", None), ("1e3", None), ("1 2", None), (".12.incomplete", None),
    ("\uff11\uff12", None), (str(versions_lib.INT64_MAX + 1), None),
])
def test_version_numbers_are_read_as_tf_serving_reads_them(name, version):
    assert versions_lib.version_number(name) == version


def test_copy_goes_to_a_hidden_staging_folder_then_is_renamed(tmp_path, monkeypatch):
    seen = []
    real_copy = versions_lib.io_utils.copy_dir

    def spying_copy(src, dst, *args, **kwargs):
        seen.append((dst, sorted(os.listdir(os.path.dirname(dst))) if os.path.isdir(os.path.dirname(dst)) else []))
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(versions_lib.io_utils, "copy_dir", spying_copy)
    base = str(tmp_path / "serving" / "cats")
    model_dir = make_model(tmp_path).uri
    version, path = versions_lib.push_atomically(os.path.join(model_dir, "Format-Serving"), base)
    [(staging, visible_while_copying)] = seen
    assert os.path.basename(staging).startswith(".") and os.path.dirname(staging) == base
    assert visible_while_copying == []  # no version folder existed during the copy
    assert os.listdir(base) == [version] and path == os.path.join(base, version)


@pytest.fixture
def small_disk(tmp_path):
    with mounted_tmpfs(tmp_path / "small-disk", "256k") as mount_point:
        yield mount_point


def test_a_full_serving_disk_leaves_no_version_and_says_what_failed(tmp_path, small_disk):
    model = make_model(tmp_path)
    with open(os.path.join(model.uri, "Format-Serving", "variables", "variables.data-00000-of-00001"), "wb") as f:
        f.write(os.urandom(1 << 20))  # 1 MiB: more than the disk holds
    base = str(small_disk / "cats")

    with pytest.raises(versions_lib.PushFailed) as failed:
        versions_lib.push_atomically(os.path.join(model.uri, "Format-Serving"), base)

    assert f"pushing the model to {base} failed" in str(failed.value)
    assert "no version was added there" in str(failed.value)
    assert os.listdir(base) == []  # neither a version nor the staging folder
    assert shutil.disk_usage(small_disk).used < 64 << 10  # what was copied is gone


def test_a_copy_failing_half_way_leaves_nothing_behind(tmp_path, monkeypatch):
    real_copy = versions_lib.io_utils.copy_dir

    def copy_then_fail(src, dst, *args, **kwargs):
        real_copy(src, dst, *args, **kwargs)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(versions_lib.io_utils, "copy_dir", copy_then_fail)
    model = make_model(tmp_path)
    base = str(tmp_path / "serving" / "cats")
    with pytest.raises(versions_lib.PushFailed, match="Input/output error"):
        versions_lib.push_atomically(os.path.join(model.uri, "Format-Serving"), base)
    assert os.listdir(base) == []


def test_ctrl_c_during_the_copy_leaves_nothing_behind(tmp_path, monkeypatch):
    def interrupted_copy(src, dst, *args, **kwargs):
        os.makedirs(os.path.join(dst, "variables"))
        raise KeyboardInterrupt

    monkeypatch.setattr(versions_lib.io_utils, "copy_dir", interrupted_copy)
    model = make_model(tmp_path)
    base = str(tmp_path / "serving" / "cats")
    with pytest.raises(KeyboardInterrupt):
        versions_lib.push_atomically(os.path.join(model.uri, "Format-Serving"), base)
    assert os.listdir(base) == []
