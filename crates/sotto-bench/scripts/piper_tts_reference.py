"""The reference for Sotto's Piper bench: the official piper-tts Python package on the same
voice and texts. Prints JSON: load time, then per text the time to the first audio chunk,
the total time and the audio length. Usage: python piper_tts_reference.py MODEL.onnx JSON_TEXTS"""
import json
import sys
import time

started = time.perf_counter()
from piper import PiperVoice  # noqa: E402 (the import is part of what a user waits for)

voice = PiperVoice.load(sys.argv[1])
load_ms = (time.perf_counter() - started) * 1000
runs = []
for text in json.loads(sys.argv[2]):
    start = time.perf_counter()
    first = None
    samples = 0
    for chunk in voice.synthesize(text):
        if first is None:
            first = time.perf_counter() - start
        samples += len(chunk.audio_float_array)
    total = time.perf_counter() - start
    runs.append({
        "first_audio_ms": first * 1000,
        "total_ms": total * 1000,
        "audio_ms": samples * 1000 / voice.config.sample_rate,
    })
print(json.dumps({"load_ms": load_ms, "runs": runs}))
