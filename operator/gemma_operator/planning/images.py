"""The operator's default image of a runtime, set without a release (`gemma-operator run --runtime-image`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from gemma_operator.api import Runtime, Target
from gemma_operator.catalog import runtimes

# Per runtime and target, the image planned in place of the catalog's; a GemmaDeployment's serving.image still wins.
RuntimeImages = Mapping[tuple[Runtime, Target], str]
CATALOG_IMAGES: RuntimeImages = MappingProxyType({})


def runtime_images(settings: Iterable[str]) -> RuntimeImages:
    """`RUNTIME=IMAGE` (every target the catalog gives the runtime an image for) or `RUNTIME/TARGET=IMAGE` (that
    one), later settings winning. Raises ValueError naming the setting and the valid choices."""
    images: dict[tuple[Runtime, Target], str] = {}
    catalog = runtimes()
    for setting in settings:
        name, _, image = setting.partition("=")
        runtime_name, _, target_name = name.strip().partition("/")
        runtime = next((runtime for runtime in catalog if runtime.value == runtime_name), None)
        if runtime is None:
            choices = ", ".join(runtime.value for runtime in catalog)
            raise ValueError(f"--runtime-image {setting!r}: no runtime {runtime_name!r} (choose one of {choices})")
        targets = tuple(catalog[runtime].images)
        if target_name:
            target = next((target for target in targets if target.value == target_name), None)
            if target is None:
                choices = ", ".join(target.value for target in targets)
                raise ValueError(
                    f"--runtime-image {setting!r}: {runtime.value} has no {target_name!r} image "
                    f"(its targets: {choices})"
                )
            targets = (target,)
        image = image.strip()
        if not image or any(character.isspace() for character in image):
            raise ValueError(f"--runtime-image {setting!r}: expected RUNTIME[/TARGET]=IMAGE, an image without spaces")
        images |= dict.fromkeys(((runtime, target) for target in targets), image)
    return MappingProxyType(images)
