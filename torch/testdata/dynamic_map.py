"""Writes dynamic_map.json: bitsandbytes' 8-bit dynamic quantisation maps, the golden
values of torch.(*Scope).DynamicMap.

create_dynamic_map below is bitsandbytes' function (bitsandbytes/functional.py, MIT
licence, commit 95f9af309d4d5793847169c39288dcd3fcbdf564), unchanged but for the
docstring. Run with a Python that has torch (Debian 12: /usr/bin/python3 with
python3-torch 1.13):

    /usr/bin/python3 torch/testdata/dynamic_map.py > torch/testdata/dynamic_map.json
"""
import json

import torch


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    data = []
    # these are additional items that come from the case
    # where all the exponent bits are zero and no
    # indicator bit is present
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(
            2 ** (i + non_sign_bits - max_exponent_bits) + 1
            if signed
            else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1,
        )
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()

    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()

    data.append(0)
    data.append(1.0)

    assert len(data) == 2**total_bits

    gap = 256 - len(data)
    for i in range(gap):
        data.append(0)

    data.sort()
    return torch.tensor(data, dtype=torch.float32)


print(json.dumps({
    "torch": torch.__version__,
    "bitsandbytes": "95f9af309d4d5793847169c39288dcd3fcbdf564",
    "signed": create_dynamic_map(True).tolist(),
    "unsigned": create_dynamic_map(False).tolist(),
}))
