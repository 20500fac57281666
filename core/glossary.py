"""The words the studio cannot avoid, each said in one or two sentences a doctor or a teacher understands.

One place for the plain-language meaning of a technical term: the first-run guide shows them all (the
studio's "What do these words mean?"), and any screen, report or command that needs to explain a term
takes it from here instead of writing its own.

    TERMS["LoRA"]     -> "A way to teach …"
"""

from __future__ import annotations

TERMS: dict[str, str] = {
    "LoRA": (
        "A way to teach an existing chat model new habits cheaply: the model itself stays untouched, and a small "
        "add-on (the adapter) learns the difference. It needs far less memory and time than retraining the whole model."),
    "Adapter": (
        "The small file LoRA trains: a few megabytes that sit on top of the original model and change how it answers. "
        "Several adapters can share one model, like lenses on one camera."),
    "Rank (r)": (
        "How much the adapter can learn: a larger rank means a bigger, more capable add-on that needs more memory. "
        "8 to 32 suits most tasks."),
    "Alpha": (
        "How strongly the adapter's lessons are applied on top of the model, relative to the rank. "
        "A common choice is once or twice the rank."),
    "Epoch": (
        "One full pass over your training data. Three epochs means the model has read every example three times."),
    "Learning rate": (
        "How big a correction the model makes after each batch of examples. Too high and it forgets what it knew "
        "or the loss jumps about; too low and it learns almost nothing."),
    "Batch size": (
        "How many conversations the model reads before it makes one correction. Larger batches give steadier "
        "learning but need more memory."),
    "Validation split": (
        "A share of your examples set aside and never used for training, so that progress is measured on questions "
        "the model has not seen — like keeping some exam questions out of the homework."),
    "Overfitting": (
        "When the model learns its training examples by heart instead of the skill behind them: it gets better on "
        "those examples and worse on new ones. A validation loss that rises while the training loss falls is the sign."),
    "Checkpoint": (
        "A snapshot of the training saved along the way, so a run that stops or crashes can continue from there "
        "instead of starting again."),
    "Perplexity": (
        "How surprised the model is by the correct answers: lower is better. 1 would mean it always expected "
        "exactly the right words."),
    "BLEU": (
        "A score from 0 to 100 for how many words and short phrases of the model's answer also appear in the "
        "correct answer. Strict: a good answer worded differently scores low."),
    "ROUGE": (
        "A score from 0 to 100 for how much of the correct answer the model's answer covers, word by word "
        "(ROUGE-L: the longest run of words in the same order)."),
    "chrF": (
        "A score from 0 to 100 that compares the answers character by character, so it is fair to Chinese and to "
        "words with different endings. The studio's main automatic score."),
    "Quantisation": (
        "Storing the model's numbers with fewer digits (8 or 4 bits instead of 16 or 32) so that it takes less "
        "memory and disk, at a small cost in quality."),
    "Merge": (
        "Folding the adapter into a copy of the original model, giving one ordinary model that any tool can load "
        "without knowing about LoRA."),
    "GGUF": (
        "A single-file model format used by llama.cpp and Ollama to run models on ordinary laptops and "
        "phones, usually quantised."),
    "OOM": (
        "\"Out of memory\": the model, the data or the batch did not fit in the computer's or the graphics card's "
        "memory. Lower the batch size or the max length, or use QLoRA."),
}
