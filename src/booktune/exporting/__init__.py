"""Exporting a trained run for other tools: merged safetensors, a GGUF file, a GGUF LoRA and an Ollama Modelfile.

The core takes plain inputs (folders, stop ids, strings); reading a run folder is the caller's job.

    merge_adapter(base_dir, adapter_dir, out_dir, dtype="bf16", stop_ids=[...])   -> merged HF folder
    write_gguf(merged_dir, "model.gguf", quant="q8_0", stop_ids=[...])          -> one GGUF file
    write_lora_gguf(adapter_dir, base_dir, "adapter.gguf")                      -> GGUF LoRA
    write_modelfile(out_dir, "model.gguf", stops=[...], system=..., template=go_template(chat_pieces(tok)), ...)
"""

from booktune.exporting.errors import ExportError
from booktune.exporting.gguf_arch import ARCHES
from booktune.exporting.gguf_lora import write_lora_gguf
from booktune.exporting.gguf_model import write_gguf
from booktune.exporting.gguf_quant import DEFAULT_QUANT, K_QUANTS, QUANTS
from booktune.exporting.merge import merge_adapter
from booktune.exporting.ollama import chat_pieces, go_template, ollama_create_command, write_modelfile

__all__ = ["ARCHES", "DEFAULT_QUANT", "ExportError", "K_QUANTS", "QUANTS", "chat_pieces", "go_template",
           "merge_adapter", "ollama_create_command", "write_gguf", "write_lora_gguf", "write_modelfile"]
