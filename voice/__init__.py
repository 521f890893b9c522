"""Voice: audio in to text (Vosk, with an offline fallback) and text to audio (pyttsx3).

Not built yet; the voice channel will talk to the assistant through the same gateway API.
"""
