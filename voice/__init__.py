"""Voice: audio in to text (Vosk, or the bundled faster-whisper tiny.en) and text to audio (espeak-ng,
through its command or pyttsx3); the gateway's voice endpoints are in assistant/voice_api.py."""
