"""The suite's split into shards (tests/sharding.py): every test in exactly one shard, balanced."""

import pytest

from tests.run_shards import with_database_suffix, with_redis_db
from tests.sharding import assign, parse

NODEIDS = (
    [f"tests/big/test_matrix.py::test_case[{i}]" for i in range(40)]
    + [f"tests/a/test_small.py::test_{i}" for i in range(5)]
    + [f"tests/b/test_slow.py::test_{i}" for i in range(2)]
    + ["tests/c/test_new.py::test_unknown"]
)
DURATIONS = {
    "tests/big/test_matrix.py": {"seconds": 400.0, "tests": 40},
    "tests/a/test_small.py": {"seconds": 5.0, "tests": 5},
    "tests/b/test_slow.py": {"seconds": 300.0, "tests": 2},
}


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_every_test_lands_in_exactly_one_shard(shards):
    result = assign(NODEIDS, shards, DURATIONS)
    assert len(result) == len(NODEIDS)
    assert set(result) <= set(range(shards))


def test_load_is_balanced_and_small_modules_stay_whole():
    result = assign(NODEIDS, 2, DURATIONS)
    load = [0.0, 0.0]
    for nodeid, shard in zip(NODEIDS, result, strict=True):
        module = nodeid.split("::")[0]
        known = DURATIONS.get(module)
        load[shard] += known["seconds"] / known["tests"] if known else 1.0
    assert abs(load[0] - load[1]) <= 150  # one 150 s test is the coarsest unit
    small = {shard for nodeid, shard in zip(NODEIDS, result, strict=True) if "test_small" in nodeid}
    assert len(small) == 1  # a small module keeps its fixtures in one process
    big = {shard for nodeid, shard in zip(NODEIDS, result, strict=True) if "test_matrix" in nodeid}
    assert big == {0, 1}  # a module larger than a quarter of a shard is dealt out


def test_same_input_same_split():
    assert assign(NODEIDS, 2, DURATIONS) == assign(list(NODEIDS), 2, dict(DURATIONS))


@pytest.mark.parametrize("spec", ["2/2", "x", "1/0", "-1/2"])
def test_bad_spec_is_refused(spec):
    with pytest.raises(ValueError, match="TEST_SHARD"):
        parse(spec)


def test_each_shard_gets_its_own_database_and_redis():
    assert with_database_suffix("postgres://postgres@127.0.0.1:5432/opsportal", "_s1") == "postgres://postgres@127.0.0.1:5432/opsportal_s1"
    assert with_redis_db("redis://127.0.0.1:6379/9", 1) == "redis://127.0.0.1:6379/10"
    assert with_redis_db("redis://127.0.0.1:6379", 1) == "redis://127.0.0.1:6379/1"
    assert with_redis_db("redis://127.0.0.1:6379/15", 1) == "redis://127.0.0.1:6379/0"


def test_the_sqlite_run_uses_the_embedded_default_in_a_file_under_var():
    """`make test`'s extra run (tests/run_shards.py): SQLite files, cache and broker under
    var/test-sqlite/, no Redis; the settings it loads give the test database a file there too."""
    import json
    import subprocess
    import sys

    from tests.run_shards import ROOT, sqlite_env

    env = sqlite_env()
    var = ROOT / "var" / "test-sqlite"
    assert env["DATABASE_URL"] == f"sqlite:///{var / 'opsportal.sqlite3'}" and env["REDIS_URL"] == "" and "TEST_SHARD" not in env
    code = ("import django, json; django.setup(); from django.conf import settings as s; d = s.DATABASES['default'];"
            "print(json.dumps([d['ENGINE'], d['NAME'], d['TEST']['NAME'], s.CACHES['default']['BACKEND'], s.CELERY_BROKER_URL]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
                         capture_output=True, text=True, check=True).stdout
    engine, name, test_name, cache, broker = json.loads(out.strip().splitlines()[-1])
    assert engine == "django.db.backends.sqlite3" and name == str(var / "opsportal.sqlite3")
    assert test_name == str(var / "test_opsportal.sqlite3")
    assert cache.endswith("FileBasedCache") and broker == "filesystem://"


def test_the_sqlite_run_names_every_module_with_sqlite_tests():
    import re

    from tests.run_shards import ROOT, SQLITE_MODULES

    used = re.compile(r"^(@pytest\.mark\.sqlite|pytestmark = .*pytest\.mark\.sqlite)", re.MULTILINE)
    marked = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py") if used.search(p.read_text()))
    assert marked == sorted(SQLITE_MODULES)
