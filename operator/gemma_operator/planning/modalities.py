"""What a replica serves besides text: which encoder towers its runtime loads, and the memory the encoder
takes while the runtime profiles it (spec.serving.modalities).

vLLM (catalog/versions/vllm.yaml `multimodal`) builds a tower only while some modality it serves has a
limit above 0, and sizes its KV cache after a profile run that encodes a batch of the largest enabled
item and keeps the outputs in the encoder cache through the language model's dummy pass. llama.cpp loads
the whole projector file unless --no-mmproj; TGI loads every tower and has no option to limit inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from gemma_operator.api import Family, ModalitiesSpec, Runtime
from gemma_operator.catalog import Variant
from gemma_operator.catalog.versions.vllm import VllmRules

# vLLM's limit for a modality not given (vllm/config/multimodal.py MultiModalConfig.get_limit_per_prompt).
VLLM_DEFAULT_ITEMS = 999
# The encoder's outputs and its retained hidden states are held at the model's 16-bit dtype.
ENCODER_VALUE_BYTES = 2
FIELD = "spec.serving.modalities"


@dataclass(frozen=True)
class Item:
    """The largest item of one enabled modality: the tokens it becomes, and the tower rows that encode it."""

    modality: str
    limit: int
    tokens: int
    # The tower encodes an item as `pieces` batches of `rows` rows (a video's frames; one for an image).
    pieces: int
    rows: int
    tower_hidden: int
    chunk_positions: int | None


@dataclass(frozen=True)
class Modalities:
    """The inputs a plan serves: towers loaded, limits and budget to render, and the items profiled."""

    vision_loaded: bool
    audio_loaded: bool
    text_only: bool
    # Per modality, the limit the spec gives (rendered as --limit-mm-per-prompt); absent ones keep the default.
    limits: tuple[tuple[str, int], ...]
    tokens_per_image: int | None
    items: tuple[Item, ...]

    @property
    def largest_item_tokens(self) -> int:
        """Tokens of the largest enabled item (0 with none), which a batch must hold whole where vLLM says so."""
        return max((item.tokens for item in self.items), default=0)

    def encoder_bytes(
        self,
        context: int,
        sequences: int,
        batch_tokens: int,
        hidden: int,
        free: float,
        total: float,
        activation_bytes_per_hidden_unit: int,
    ) -> int:
        """What vLLM's profile run holds for the encoder beyond the language model's own activations, per GPU.

        The profile encodes the largest enabled item's batch (tower activations of one chunk, plus the hidden
        states of every item), frees the tower's activations, and keeps the outputs in the encoder cache
        through the dummy pass whose activations memory.overhead_gib already charges. `free` is what the
        GPU holds when the profile starts, `total` its memory; activations follow the runtime's bytes per
        hidden unit (runtimes.yaml), in the tower as in the language model.
        """
        if not self.items:
            return 0
        largest = max(self.items, key=lambda item: (item.tokens, item.modality))
        budget = max(batch_tokens, largest.tokens)
        per_prompt = max(1, min(largest.limit, context // largest.tokens))
        batch = max(1, min(budget // largest.tokens, sequences * per_prompt))
        outputs = batch * largest.tokens * hidden * ENCODER_VALUE_BYTES
        pieces = batch * largest.pieces
        chunk = pieces
        if largest.chunk_positions is not None:
            # gemma4_mm.py _encoder_chunk: min(free / 2, total / 10) over (rows * 4 * positions * 8) bytes a piece.
            allowance = min(free / 2, total / 10)
            cost = largest.rows * 4 * largest.chunk_positions * 8
            chunk = min(pieces, max(1, int(allowance // cost)))
        rows = largest.rows * largest.tower_hidden
        tower = chunk * rows * activation_bytes_per_hidden_unit + pieces * rows * ENCODER_VALUE_BYTES
        language = min(context, batch_tokens) * hidden * activation_bytes_per_hidden_unit
        return int(max(outputs, tower - language))


def _explicit_limits(spec: ModalitiesSpec) -> dict[str, int]:
    given = {"image": spec.image, "video": spec.video, "audio": spec.audio}
    return {name: m.max_per_prompt for name, m in given.items() if m is not None and m.max_per_prompt is not None}


def _served(variant: Variant) -> tuple[str, ...]:
    """The modalities the variant takes: Gemma 4 images and video (E2B, E4B and 12B audio too), Gemma 3 images."""
    found = []
    if variant.encoders.vision is not None:
        found.append("image")
        if variant.family is Family.GEMMA_4:
            found.append("video")
    if variant.encoders.audio is not None:
        found.append("audio")
    return tuple(found)


def refusal(spec: ModalitiesSpec, variant: Variant, runtime: Runtime, version: str) -> str | None:
    """Why the runtime cannot serve these modalities of the variant; None when it can."""
    served = _served(variant)
    limits = _explicit_limits(spec)
    for name, limit in limits.items():
        if limit and name not in served:
            takes = ", ".join(served) if served else "text only"
            return f"{FIELD}.{name}: {variant.label} takes no {name} input (it takes {takes}); leave it unset or 0"
    image = spec.image
    if image is not None and image.tokens_per_image is not None:
        vision = variant.encoders.vision
        if vision is None or not vision.tokens_configurable:
            return (
                f"{FIELD}.image.tokensPerImage: {variant.label}'s processor has a fixed image budget"
                + (f" of {vision.tokens_per_image} tokens" if vision else "")
                + "; leave it unset"
            )
    restricted = spec.text_only or bool(limits) or (image is not None and image.tokens_per_image is not None)
    if not restricted:
        return None
    if runtime is Runtime.TGI:
        return (
            f"{FIELD}: TGI {version} has no option to limit or turn off image inputs (its launcher's options: "
            "catalog/versions/flags/tgi-3.3.7.yaml); it loads the vision tower whatever the spec says; use runtime "
            "vllm or auto"
        )
    if runtime is Runtime.LLAMACPP and not _all_off(spec, served):
        return (
            f"{FIELD}: llama.cpp {version} has no per-modality limit or image budget; it serves every modality of "
            "its projector file, or none with --no-mmproj: set textOnly, or leave modalities unset"
        )
    return None


def _all_off(spec: ModalitiesSpec, served: tuple[str, ...]) -> bool:
    if spec.text_only:
        return True
    limits = _explicit_limits(spec)
    image = spec.image
    return all(limits.get(name) == 0 for name in served) and not (
        image is not None and image.tokens_per_image is not None
    )


def resolve(spec: ModalitiesSpec, variant: Variant, runtime: Runtime, rules: VllmRules | None) -> Modalities:
    """The modalities a runtime serves for a spec that refusal() admits. rules: vLLM's, on vLLM only."""
    served = _served(variant)
    explicit = _explicit_limits(spec)
    # A text-only variant has nothing to turn off, and its runtime is told nothing.
    off = bool(served) and _all_off(spec, served) and runtime is not Runtime.TGI

    def limit(name: str) -> int:
        if name not in served or off:
            return 0
        return explicit.get(name, VLLM_DEFAULT_ITEMS)

    vision, audio = variant.encoders.vision, variant.encoders.audio
    skippable = rules is not None and variant.architecture in rules.multimodal.skips_towers_of
    if runtime is Runtime.VLLM:
        vision_loaded = vision is not None and (not skippable or limit("image") > 0 or limit("video") > 0)
        audio_loaded = audio is not None and (not skippable or limit("audio") > 0)
    else:
        vision_loaded, audio_loaded = vision is not None and not off, audio is not None and not off
    tokens_per_image = spec.image.tokens_per_image if spec.image is not None else None
    items: list[Item] = []
    if rules is not None and vision is not None:
        if limit("image"):
            tokens = tokens_per_image or vision.tokens_per_image
            rows = tokens * vision.patches_per_token
            items.append(
                Item("image", limit("image"), tokens, 1, rows, vision.hidden_size, vision.chunk_position_embeddings)
            )
        if limit("video"):
            frames, per_frame = rules.multimodal.video_frames, rules.multimodal.video_tokens_per_frame
            items.append(
                Item(
                    "video",
                    limit("video"),
                    rules.whole_multimodal_items.gemma4_item_tokens,
                    frames,
                    per_frame * vision.patches_per_token,
                    vision.hidden_size,
                    vision.chunk_position_embeddings,
                )
            )
    if rules is not None and audio is not None and limit("audio"):
        tokens = audio.tokens_per_item
        items.append(Item("audio", limit("audio"), tokens, 1, tokens, audio.hidden_size, None))
    rendered = tuple((name, count) for name, count in explicit.items() if name in served and not off)
    return Modalities(vision_loaded, audio_loaded, off, rendered, tokens_per_image, tuple(items))
