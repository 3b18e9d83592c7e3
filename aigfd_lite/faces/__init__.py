"""The faces (chapter 3): the lite corpus, FDF-like crops, face detection and landmarks, the CelebA crops."""
from .corpus import ORDINAL_TAGS, build_corpus, corpus_key, corpus_photos, corpus_report
from .crops import crop_face
from .celeba import JPEG_QUALITY as CELEBA_JPEG_QUALITY
from .celeba import celeba_faces, celeba_photos
from .landmarks import LandmarkBackendUnavailable, detect_faces_fan, detect_faces_scored, landmarks_68

__all__ = ["CELEBA_JPEG_QUALITY", "LandmarkBackendUnavailable", "ORDINAL_TAGS", "build_corpus", "celeba_faces",
           "celeba_photos", "landmarks_68", "corpus_key", "corpus_photos",
           "corpus_report", "crop_face", "detect_faces_fan", "detect_faces_scored"]
