"""A local Spark session for the TRE that talks to nothing but this machine.

The JVM is started with the driver bound to 127.0.0.1, no web UI, no event log, a few shuffle
partitions and every scratch folder (shuffle spills, Java temp files, warehouse) under one work
folder the caller chooses. Spark 4 needs Java 17 or 21: when neither ``JAVA_HOME`` nor the
``java`` on ``PATH`` is one of those, a suitable JDK is looked for in the usual places and given
to the JVM alone (the caller's environment is restored as soon as the JVM is up).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from confide.common import exit_codes
from confide.common.errors import ConfideError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SUPPORTED_JAVA = (17, 21)
_JDK_FOLDERS = (
    "/usr/lib/jvm",
    "/usr/local/lib/jvm",
    "/opt/java",
    "/usr/java",
    "/Library/Java/JavaVirtualMachines",
)
_LAUNCH_LOCK = threading.Lock()


class SparkUnavailable(ConfideError):
    """Spark cannot start here: pyspark is missing, or no Java 17/21 was found."""

    exit_code = exit_codes.UNAVAILABLE


def java_version(home: Path) -> int | None:
    """The major version of the JDK or JRE at ``home`` (from its ``release`` file)."""
    release = home / "release"
    if not (home / "bin" / "java").exists() or not release.exists():
        return None
    found = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', release.read_text(), re.MULTILINE)
    if found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def find_java_home() -> Path | None:
    """A Java home Spark can use, or None when the one already in effect is fine.

    ``JAVA_HOME`` wins when it holds a supported Java; then the ``java`` on ``PATH``; then the
    newest supported JDK in the usual install folders."""
    current = os.environ.get("JAVA_HOME")
    if current and java_version(Path(current)) in SUPPORTED_JAVA:
        return None
    on_path = shutil.which("java")
    if on_path:
        home = Path(on_path).resolve().parent.parent
        if java_version(home) in SUPPORTED_JAVA:
            return home if current else None  # a JAVA_HOME set to another Java would win
    candidates = []
    for folder in _JDK_FOLDERS:
        root = Path(folder)
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            for home in (entry, entry / "Contents" / "Home"):
                version = java_version(home)
                if version in SUPPORTED_JAVA and not home.is_symlink():
                    candidates.append((version, str(home)))
    if not candidates:
        raise SparkUnavailable(
            "Spark needs Java 17 or 21 and none was found.",
            hint="Install a JDK (for example openjdk-17-jre-headless) or set JAVA_HOME.",
        )
    return Path(max(candidates)[1])


@contextlib.contextmanager
def _launch_environment(java_home: Path | None) -> Iterator[None]:
    """Variables for the JVM being started, removed again once it is up."""
    wanted = {"SPARK_LOCAL_IP": "127.0.0.1"}
    if java_home is not None:
        wanted["JAVA_HOME"] = str(java_home)
    with _LAUNCH_LOCK:
        saved = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def local_session(
    work: Path,
    *,
    threads: int = 2,
    memory: str = "1g",
    shuffle_partitions: int | None = None,
    app_name: str = "confide-tre",
    java_options: str = "",
    settings: Mapping[str, str] | None = None,
) -> SparkSession:
    """Start (or reuse) the process's local Spark session with the TRE's settings.

    ``work`` holds Spark's scratch files; ``threads`` and ``memory`` size the one local JVM
    (Spark cannot change them per query). ``java_options`` and ``settings`` are added to the
    JVM's options and Spark's settings. Settings fixed at JVM start are ignored with a warning
    by Spark if a session already runs in this process."""
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            "pyspark is not installed.", hint="Install Confide with the spark extra."
        ) from None
    work = Path(work)
    for sub in ("local", "tmp", "warehouse"):
        (work / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    partitions = shuffle_partitions or max(1, 2 * threads)
    java = f"-Djava.io.tmpdir={work / 'tmp'} {java_options}".strip()
    conf = (
        SparkConf()
        .setMaster(f"local[{int(threads)}]")
        .setAppName(app_name)
        .set("spark.driver.host", "127.0.0.1")
        .set("spark.driver.bindAddress", "127.0.0.1")
        .set("spark.driver.memory", memory)
        .set("spark.driver.extraJavaOptions", java)
        .set("spark.local.dir", str(work / "local"))
        .set("spark.sql.warehouse.dir", str(work / "warehouse"))
        .set("spark.ui.enabled", "false")
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.eventLog.enabled", "false")
        .set("spark.sql.shuffle.partitions", str(partitions))
        .set("spark.default.parallelism", str(partitions))
        .set("spark.sql.session.timeZone", "UTC")
        # Local files are listed faster on the driver than by a Spark job per table.
        .set("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
        .set("spark.log.level", "ERROR")
    )
    for name, value in (settings or {}).items():
        conf.set(name, value)
    with _launch_environment(find_java_home()):
        return SparkSession.builder.config(conf=conf).getOrCreate()
