"""Typed configs of the music family (no torch): the conditional model with its guided /
distilled sampling, the prompt-music matcher, and the `music_cfg_distill` algorithm."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gamescale.algorithms.lm.shapes import ModelShape
from gamescale.algorithms.registry import AlgorithmConfig


class ConditionalMusicConfig(BaseModel):
    """A prompt-conditioned transformer over the music vocabulary, trained with condition
    dropout so that one model gives both the conditional and the unconditional logits CFG
    needs; `guidance_scale` s mixes them as uncond + s (cond - uncond) (1: conditional,
    0: unconditional, > 1: guided)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelShape = ModelShape(d_model=64, n_layers=2, n_heads=4, d_ff=128)
    context_length: int = Field(256, ge=16, description="prompt + BOS + music tokens seen in training")
    condition_dropout: float = Field(0.2, ge=0.0, le=1.0, description="share of sequences trained with NULL prompts")
    attribute_dropout: float = Field(
        0.1, ge=0.0, le=1.0, description="share of single prompt attributes replaced by NULL (partial prompts)"
    )
    guidance_scale: float = Field(3.0, strict=True, allow_inf_nan=False, description="CFG scale (a number)")
    temperature: float = Field(1.0, gt=0.0)
    top_k: int | None = Field(None, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(16, ge=1)
    seed: int = 0


class MatcherConfig(BaseModel):
    """The prompt-music matching model (two small encoders into one `dim`-dimensional space,
    trained with a symmetric InfoNCE loss at `temperature` on real pieces and their metadata
    prompts). Its music encoder is also the embedding the diversity reward compares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: int = Field(32, ge=2, description="shared embedding size")
    hidden: int = Field(64, ge=4, description="width of both encoders")
    music_tokens: int = Field(64, ge=8, description="music tokens (after BOS) each piece is cut to, as generations are")
    steps: int = Field(300, ge=0)
    batch_size: int = Field(32, ge=2)
    temperature: float = Field(0.1, gt=0.0)
    learning_rate: float = Field(3e-3, gt=0.0)


class MusicCfgDistillConfig(AlgorithmConfig):
    """CFG distillation with a diversity reward (arXiv 2410.06084) on the music corpus.

    `init` trains the base model (condition dropout, `base_steps`) and the matcher; one
    student learner per `betas` value starts at the base weights and trains on its own
    generations with KL(p_cfg || p_student) + beta * REINFORCE on the diversity reward.
    At the end the models of the quality-diversity table are evaluated: base (scale 1),
    CFG (scale `model.guidance_scale`), each student, and interpolations at `mixes`
    between the beta = 0 student and the largest-beta one.
    Quality = matching score + `likelihood_weight` * the CFG teacher's mean per-token
    log-likelihood of the generation; diversity = mean embedding dissimilarity among the
    `generations_per_prompt` generations of one prompt.
    """

    name: str = "music_cfg_distill"
    model: ConditionalMusicConfig = ConditionalMusicConfig()
    base_steps: int = Field(300, ge=0, description="condition-dropout training steps of the base model")
    matcher: MatcherConfig = MatcherConfig()
    completion_length: int = Field(64, ge=4, description="music tokens generated after BOS")
    prompts_per_iteration: int = Field(4, ge=1, description="train prompts per student per iteration (all shards)")
    generations_per_prompt: int = Field(4, ge=2, description="generations of one prompt (diversity needs >= 2)")
    betas: tuple[float, ...] = Field((0.0, 2.0), min_length=1, description="diversity weight of each student")
    mixes: tuple[float, ...] = Field((0.25, 0.5, 0.75), description="interpolation factors (0 = beta-0 student)")
    likelihood_weight: float = Field(0.05, ge=0.0, description="weight of the teacher log-likelihood in quality")
    learning_rate: float = Field(3e-4, gt=0.0)
    updates_per_iteration: int = Field(1, ge=1)
    reward_workers: int = Field(1, ge=1, description="actors of the reward pool")
    reward_cpus: float = Field(0.5, gt=0.0, le=1.0, description="CPU each reward actor reserves")
    eval_prompts: int = Field(8, ge=1, description="prompts of the final evaluation")
    prompts: tuple[str, ...] = Field(
        (), description="text prompts of the final evaluation, cycled to eval_prompts (default: held-out pieces')"
    )
    midi_per_model: int = Field(2, ge=0, description="generations written as MIDI per model")
    wav: bool | Literal["auto"] = Field(
        "auto", description="also render each MIDI file to WAV with FluidSynth: where installed (auto), always (true: "
        "a missing FluidSynth or soundfont is a config error), never (false)"
    )
    soundfont: str | None = Field(None, description="General MIDI .sf2 for WAV (default: $GAMESCALE_SOUNDFONT, "
                                  "else the system's)")

    @field_validator("betas")
    @classmethod
    def _distinct_betas(cls, betas: tuple[float, ...]) -> tuple[float, ...]:
        if any(b < 0 for b in betas) or len(set(betas)) != len(betas):
            raise ValueError(f"betas must be distinct and >= 0, got {list(betas)}")
        return betas

    @field_validator("mixes")
    @classmethod
    def _mixes_in_range(cls, mixes: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 <= m <= 1.0 for m in mixes):
            raise ValueError(f"mixing factors must lie in [0, 1], got {list(mixes)}")
        return mixes

    @field_validator("prompts")
    @classmethod
    def _parse_prompts(cls, prompts: tuple[str, ...]) -> tuple[str, ...]:
        from gamescale.envs.music.vocab import parse_prompt

        return tuple(parse_prompt(p).text() for p in prompts)  # an unknown attribute is one PromptError line

    @model_validator(mode="after")
    def _fits(self) -> MusicCfgDistillConfig:
        from gamescale.envs.music.vocab import PROMPT_LENGTH

        if PROMPT_LENGTH + 1 + self.completion_length > self.model.context_length:
            raise ValueError(f"prompt ({PROMPT_LENGTH + 1} tokens) plus completion_length {self.completion_length} "
                             f"exceeds the model's context_length {self.model.context_length}")
        if self.mixes and (0.0 not in self.betas or max(self.betas) == 0.0):
            raise ValueError("interpolation (mixes) needs a beta = 0 student and one with beta > 0 in betas")
        if self.wav is True:  # asked for audio: know now, not after training, that it cannot be made
            from gamescale.envs.music.audio import AudioError, find_synth

            try:
                find_synth(self.soundfont)
            except AudioError as err:
                raise ValueError(f"wav is true but {err}") from None
        return self
