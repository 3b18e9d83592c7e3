"""The faces (chapter 3): the lite corpus, FDF-like crops, face detection and landmarks, the CelebA crops."""
from .corpus import ORDINAL_TAGS, build_corpus, corpus_key, corpus_photos, corpus_report
from .crops import crop_face
from .landmarks import LandmarkBackendUnavailable, detect_faces_fan, detect_faces_scored

__all__ = ["LandmarkBackendUnavailable", "ORDINAL_TAGS", "build_corpus", "corpus_key", "corpus_photos",
           "corpus_report", "crop_face", "detect_faces_fan", "detect_faces_scored"]
