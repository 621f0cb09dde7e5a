"""Train a chainrule model with PyTorch's DistributedDataParallel, on this machine.

The moons classifier of ``chainrule run moons`` is handed to PyTorch with
``chainrule.export.to_torch`` and trained by two processes (the gloo backend, on the
CPU): each computes the loss on its half of every batch, DistributedDataParallel averages
the two gradients, and both take the same Adam step. Then one process trains a second
copy on the whole batches, and the two runs must end at the same weights (to rounding).
The trained weights go back into chainrule with ``from_torch``.

Run it with:  python docs/examples/ddp.py
Across machines, start one process per machine with torchrun and drop mp.spawn.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import chainrule as cr
from chainrule.export import from_torch, to_torch, torch_loss, torch_optimizer

WORLD = 2  # processes
STEPS = 30  # optimizer steps
BATCH = 40  # rows per step, split evenly between the processes


def lesson():
    """The scenario, its model at the starting values, and its data as tensors."""
    scenario = cr.load_scenario("moons")
    data = scenario.data
    return scenario, scenario.build_model(), torch.tensor(data.X), torch.tensor(data.target)


def batches(n: int) -> list[torch.Tensor]:
    """The rows of each step: the same shuffled batches for every process."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    return [order[(step * BATCH) % n :][:BATCH] for step in range(STEPS)]


def replica(rank: int, world: int, rendezvous: str, result: str) -> None:
    """One process of the distributed run: its half of every batch."""
    torch.set_num_threads(1)  # one core per process
    dist.init_process_group(
        "gloo",
        init_method=f"file://{rendezvous}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),  # a process that does not come is an error, not a wait
    )
    scenario, model, X, y = lesson()
    module = DistributedDataParallel(to_torch(model))  # same weights on every process
    optimizer = torch_optimizer(scenario.optimizer, module.parameters(), scenario.learning_rate)
    loss = torch_loss(scenario.loss)
    for rows in batches(len(X)):
        mine = rows[rank::world]  # this process's half
        optimizer.zero_grad()
        loss(module(X[mine]), y[mine]).backward()  # backward averages the gradients
        optimizer.step()
    if rank == 0:
        torch.save(module.module.state_dict(), result)
    dist.destroy_process_group()


def single_process() -> torch.nn.Module:
    """The same training in one process, on the whole batches."""
    scenario, model, X, y = lesson()
    module = to_torch(model)
    optimizer = torch_optimizer(scenario.optimizer, module.parameters(), scenario.learning_rate)
    loss = torch_loss(scenario.loss)
    for rows in batches(len(X)):
        optimizer.zero_grad()
        loss(module(X[rows]), y[rows]).backward()
        optimizer.step()
    return module


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        rendezvous, result = os.path.join(folder, "rendezvous"), os.path.join(folder, "w.pt")
        # Forked children start from this process, with torch already imported; where
        # fork is missing (Windows) each child starts a fresh Python instead.
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        mp.start_processes(
            replica, args=(WORLD, rendezvous, result), nprocs=WORLD, start_method=method
        )
        distributed = torch.load(result, weights_only=True)
    alone = single_process().state_dict()
    difference = max((distributed[k] - alone[k]).abs().max().item() for k in alone)
    assert difference < 1e-10, f"the runs differ by {difference:.3g}"
    print(
        f"{WORLD} processes (gloo, CPU) end at the weights of 1 process after {STEPS} steps "
        f"(largest difference {difference:.1e})"
    )
    scenario, model, *_ = lesson()
    trained = from_torch(distributed, like=model)  # back into chainrule
    accuracy = cr.evaluate(trained, scenario.data, scenario.loss).accuracy
    print(f"back in chainrule: accuracy on the moons {accuracy:.1%}")


if __name__ == "__main__":
    main()
