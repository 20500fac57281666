"""LoRA Studio's engine: everything the UI, the CLI and the tests share. Never imports gradio."""

__version__ = "0.1.0"
