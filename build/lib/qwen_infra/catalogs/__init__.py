"""Catalogs: data only, with sources and dates. Stdlib only, nothing imported but units.

models.py          the Qwen architectures (config.json fields) and official quantized variants
gpus.py            GPU memory as the CUDA runtime reports it, measured or derived
aws_instances.py   AWS GPU instance types: GPUs, EFA, NVSwitch, NVMe, prices
"""
