"""Multi-turn chat about one video: follow-ups prefill only their own tokens and answer exactly as a full
recomputation of the whole conversation would."""

import pytest
import torch

from mobilevideogpt.chat import VideoChat
from mobilevideogpt.tiny import tiny_config
from mobilevideogpt.modeling import MobileVideoGPTForConditionalGeneration


@pytest.fixture(scope="module")
def model(tiny_tokenizer):
    torch.manual_seed(1)
    return MobileVideoGPTForConditionalGeneration(tiny_config(tiny_tokenizer)).eval()


def test_follow_up_reuses_cache_and_equals_full_recomputation(model, processor, clip_video):
    chat = VideoChat(model, processor, clip_video)
    first = "".join(chat.ask("What is happening in this video?", max_new_tokens=5, do_sample=False))
    assert first.strip() == chat.turns[0].answer  # decode() strips the answer
    assert chat.turns[0].prefilled_tokens > 2402
    before = list(chat.ids)
    messages = [{"role": "user", "content": [{"type": "video", "path": str(clip_video)},
                                             {"type": "text", "text": "What is happening in this video?"}]}]
    reference = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert before[: chat.turns[0].prefilled_tokens] == list(reference["input_ids"][0])  # the processor's own prompt

    "".join(chat.ask("Which colour is the square?", max_new_tokens=5, do_sample=False))
    follow_up = chat.turns[1]
    prompt = chat.ids[: len(chat.ids) - follow_up.new_tokens]
    assert prompt[: len(before)] == before  # the conversation so far, token for token
    assert follow_up.prefilled_tokens == len(prompt) - (len(before) - 1) < 40  # only the new question is computed

    full = model.generate(
        input_ids=torch.tensor([prompt]), video_features=chat.features, max_new_tokens=5, do_sample=False
    )
    assert full[0, len(prompt) :].tolist() == chat.ids[len(prompt) :]


def test_errors_in_generation_reach_the_caller(model, processor, clip_video):
    chat = VideoChat(model, processor, clip_video)
    with pytest.raises(ValueError):
        list(chat.ask("Hello?", max_new_tokens=-3))


def test_stopping_early_keeps_the_conversation_consistent(model, processor, clip_video):
    chat = VideoChat(model, processor, clip_video)
    stream = chat.ask("Describe the video.", max_new_tokens=50, min_new_tokens=50, do_sample=False)
    next(stream)
    stream.close()  # the reader leaves after the first piece: generation stops at the next token
    assert 1 <= chat.turns[0].new_tokens < 50
    assert chat.cache.get_seq_length() == len(chat.ids) - 1
    "".join(chat.ask("And the colours?", max_new_tokens=4, do_sample=False))
    prompt = chat.ids[: len(chat.ids) - chat.turns[1].new_tokens]
    full = model.generate(input_ids=torch.tensor([prompt]), video_features=chat.features, max_new_tokens=4, do_sample=False)
    assert full[0, len(prompt) :].tolist() == chat.ids[len(prompt) :]
