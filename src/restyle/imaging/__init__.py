"""Image input and output with limits: the one place where pixels enter and leave Restyle.

Every engine, the CLI and the HTTP service read images through `load_image`, so it is written
for hostile uploads: sizes are checked before anything is decoded, Pillow's decompression-bomb
guard stays on, only a short allow-list of formats is parsed, and every failure is one of the
`restyle.errors` types with a message that names the source and the value.

Whatever the input (CMYK, palette, 16-bit greyscale, alpha, an embedded ICC profile, an EXIF
rotation), `load_image` returns an upright 8-bit sRGB `RGB` image, and `image_to_tensor` /
`tensor_to_image` move between that and a (1, 3, H, W) tensor in [0, 1].

The modules: `limits` (sizes, formats, a painting's shape), `decode` (reading, header checks,
`as_tensor`), `convert` (to 8-bit sRGB; images to and from tensors), `resize`, and `encode`
(`encode_image`, the one encoder, and atomic `save_image`).
"""

from restyle.imaging.convert import image_to_tensor, tensor_to_image
from restyle.imaging.decode import (
    ImageHeader,
    ImageInput,
    ImageSource,
    as_tensor,
    inspect_image,
    load_image,
)
from restyle.imaging.encode import check_output_path, encode_image, save_image
from restyle.imaging.limits import (
    DEFAULT_LIMITS,
    MAX_PAINTING_ASPECT,
    SUPPORTED_FORMATS,
    ImageLimits,
    check_painting_shape,
)
from restyle.imaging.resize import (
    resize_tensor,
    resize_tensor_to_long_side,
    resize_to_area,
    resize_to_long_side,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_PAINTING_ASPECT",
    "SUPPORTED_FORMATS",
    "ImageHeader",
    "ImageInput",
    "ImageLimits",
    "ImageSource",
    "as_tensor",
    "check_output_path",
    "check_painting_shape",
    "encode_image",
    "image_to_tensor",
    "inspect_image",
    "load_image",
    "resize_tensor",
    "resize_tensor_to_long_side",
    "resize_to_area",
    "resize_to_long_side",
    "save_image",
    "tensor_to_image",
]
