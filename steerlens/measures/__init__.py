"""Measures of what steering does: refusal, multiple-choice helpfulness, completion
log-probabilities and their transfer to other prompts, and KL on reference text."""

from .calibration import Calibration as Calibration
from .calibration import calibrate as calibrate
from .choices import ChoiceTask as ChoiceTask
from .choices import qa_task as qa_task
from .kl import mean_kl as mean_kl
from .kl import token_kl as token_kl
from .logprob import completion_logprob as completion_logprob
from .qa_helpfulness import Helpfulness as Helpfulness
from .qa_helpfulness import helpfulness as helpfulness
from .refusal import is_refusal as is_refusal
from .refusal import refusal_pairs as refusal_pairs
from .transfer import TransferReport as TransferReport
from .transfer import transfer_report as transfer_report

__all__ = [
    "Calibration",
    "ChoiceTask",
    "Helpfulness",
    "TransferReport",
    "calibrate",
    "completion_logprob",
    "helpfulness",
    "is_refusal",
    "mean_kl",
    "qa_task",
    "refusal_pairs",
    "token_kl",
    "transfer_report",
]
