"""A real single-node SLURM cluster for the tests: munged, slurmctld and slurmd from the Debian packages
(`slurm-wlm`, `munge`), with their configuration, key, spool, state and logs in one temporary directory and
every port on 127.0.0.1. Client commands find it through SLURM_CONF (see `SlurmCluster.env`)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS = ["munged", "slurmctld", "slurmd", "slurmstepd", "sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel"]
NODE = "localhost"


class ClusterStartError(RuntimeError):
    """A daemon did not come up; the message carries the end of its log."""


def missing_programs() -> list[str]:
    return [program for program in PROGRAMS if shutil.which(program) is None]


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (held open together so that they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


@dataclass
class SlurmCluster:
    root: Path
    partition: str
    cpus: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment for client commands (sbatch, squeue, snakemake's SLURM executor) of this cluster.
        bin/ comes first on PATH for its srun wrapper (see write_srun_wrapper)."""
        return {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ['PATH']}",
        }

    def run(self, *command: str, timeout: float = 30) -> str:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still remembers (MinJobAge keeps finished ones for an hour)."""
        fields = {
            "id": "%i",
            "name": "%j",
            "comment": "%k",
            "partition": "%P",
            "state": "%T",
            "cpus": "%C",
            "memory": "%m",
            "time_limit": "%l",
            "workdir": "%Z",
        }
        out = self.run("squeue", "--states=all", "--noheader", "--format=" + "|".join(fields.values()))
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        """The ends of the daemons' logs, for failure messages."""
        parts = []
        for name in ("munged", "slurmctld", "slurmd"):
            log = self.root / "log" / f"{name}.log"
            text = log.read_text(errors="replace") if log.exists() else "(no log)"
            parts.append(f"--- {name} ({log}):\n" + "\n".join(text.splitlines()[-25:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel what still runs, then stop the three daemons by their pids (slurmd first, munged last)."""
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            subprocess.run(["scancel", f"--partition={self.partition}"], env=self.env, capture_output=True, timeout=30)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# generous: under `make test` the daemons start while the other xdist worker keeps both cores busy
def _wait_for(check, process: subprocess.Popen, what: str, cluster: SlurmCluster, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterStartError(f"{what} exited with code {process.returncode}\n{cluster.logs()}")
        if check():
            return
        time.sleep(0.2)
    raise ClusterStartError(f"{what} did not become ready within {timeout:.0f} s\n{cluster.logs()}")


def slurm_conf(root: Path, partition: str, cpus: int, memory: int, ports: list[int], user: str) -> str:
    # Scheduling is tuned for a test that submits ~15 short jobs: FIFO scheduling at submit time, no
    # accounting storage (so only squeue knows the jobs; MinJobAge keeps finished ones visible for an hour),
    # and no cgroups (proctrack/linuxproc, task/none): containers rarely let slurmd manage cgroups.
    return f"""\
ClusterName=ferrostem-test
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root / "munge" / "munge.socket"}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "run" / "slurmctld.pid"}
SlurmdPidFile={root / "run" / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MinJobAge=3600
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
ReturnToService=2
# the node offers `cpus` CPUs whatever the host has, so a job may ask for more threads than the host's cores
SlurmdParameters=config_overrides
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName={partition} Nodes={NODE} Default=NO MaxTime=INFINITE State=UP
"""


def write_srun_wrapper(root: Path, conf: Path) -> None:
    """snakemake-executor-plugin-slurm-jobstep (0.6.1) removes every SLURM_* variable, SLURM_CONF included,
    before its srun inside the job, so srun would look for /etc/slurm/slurm.conf; this srun puts ours back."""
    real = shutil.which("srun")
    wrapper = root / "bin" / "srun"
    wrapper.write_text(f'#!/bin/sh\nSLURM_CONF="{conf}" exec "{real}" "$@"\n')
    wrapper.chmod(0o755)


def start_cluster(root: Path, partition: str = "ferrotest", cpus: int = 4) -> SlurmCluster:
    """Start munged, slurmctld and slurmd under `root`; stop() stops them. Raises ClusterStartError with the
    daemons' logs when one does not come up."""
    root = Path(root)
    if len(str(root / "munge" / "munge.socket")) > 100:  # AF_UNIX paths are limited to 108 bytes
        root = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
    for folder in ("etc", "bin", "munge", "state", "spool", "run", "log"):
        (root / folder).mkdir(parents=True, exist_ok=True, mode=0o700)
    cluster = SlurmCluster(root=root, partition=partition, cpus=cpus)
    user = getpass.getuser()
    # memory is not a consumable resource here (CR_CPU) nor enforced (no cgroups), but sbatch refuses a job
    # asking for more than the node declares: declare at least what the largest job rule asks for
    memory = max(memory_mb(), 16000)
    cluster.conf.write_text(slurm_conf(root, partition, cpus, memory, free_ports(2), user))
    write_srun_wrapper(root, cluster.conf)

    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge = root / "munge"
    try:
        cluster.processes["munged"] = subprocess.Popen(
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={munge / 'munge.socket'}",
                f"--pid-file={root / 'run' / 'munged.pid'}",
                f"--log-file={root / 'log' / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(root / "log" / "munged.stderr", "w"),
        )
        _wait_for(lambda: (munge / "munge.socket").exists(), cluster.processes["munged"], "munged", cluster)

        cluster.processes["slurmctld"] = subprocess.Popen(
            ["slurmctld", "-D", "-i", "-f", str(cluster.conf)],
            env=cluster.env,
            stdout=subprocess.DEVNULL,
            stderr=open(root / "log" / "slurmctld.stderr", "w"),
        )
        _wait_for(lambda: _answers(cluster, "scontrol", "ping"), cluster.processes["slurmctld"], "slurmctld", cluster)

        cluster.processes["slurmd"] = subprocess.Popen(
            ["slurmd", "-D", "-N", NODE, "-f", str(cluster.conf)],
            env=cluster.env,
            stdout=subprocess.DEVNULL,
            stderr=open(root / "log" / "slurmd.stderr", "w"),
        )
        _wait_for(lambda: _node_idle(cluster), cluster.processes["slurmd"], "slurmd", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _answers(cluster: SlurmCluster, *command: str) -> bool:
    result = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=30)
    return result.returncode == 0 and "DOWN" not in result.stdout


def _node_idle(cluster: SlurmCluster) -> bool:
    result = subprocess.run(
        ["sinfo", "--noheader", "--nodes", NODE, "--format=%T"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.returncode == 0 and result.stdout.strip().rstrip("*") == "idle"
