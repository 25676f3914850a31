"""MindSpore's all_gather_matmul example with `import tpmm` instead of mindspore.

    make build                                   # builds the extension into build-mpich/python
    PYTHONPATH=build-mpich/python mpirun.mpich -n 2 /usr/bin/python3 examples/seed_example.py

prints (256, 512) and (256, 256) on every rank. The only changes from the
seed: the import, tpmm.init/get_rank/get_group_size for ms.communication,
numpy float16 arrays for ms.Tensor (no device or mode to set).
"""
import numpy as np

import tpmm

tpmm.init()
rank = tpmm.get_rank()
np.random.seed(rank)
input = np.random.randn(128, 256).astype(np.float32).astype(np.float16)
x2 = np.random.randn(256, 512).astype(np.float32).astype(np.float16)
group = tpmm.WORLD_COMM_GROUP
world_size = tpmm.get_group_size()
output, gather_out = tpmm.all_gather_matmul(
    input,
    x2,
    group,
    world_size,
    bias=None,
    gather_index=0,
    gather_output=True,
    comm_turn=0,
    trans_input=False,
    trans_x2=False,
)
print(output.shape)
print(gather_out.shape)
