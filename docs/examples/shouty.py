# my_package/__init__.py
from bizstream import Prediction, hookimpl


class Shouty:
    """Bullish when a post is written in capitals, unsure otherwise."""

    name = "shouty"
    version = "1"

    def load(self) -> None:
        pass  # load weights here; raise bizstream.AnalyzerUnavailable("why") when they are not on this machine

    def analyze(self, posts):
        out = []
        for post in posts:
            if not post.text.strip():
                out.append(None)  # an image-only post: not this analyzer's to judge
            elif post.text.isupper():
                out.append(Prediction.from_probabilities({"bearish": 0.0, "neutral": 0.1, "bullish": 0.9}))
            else:
                out.append(Prediction.from_probabilities({"bearish": 0.3, "neutral": 0.4, "bullish": 0.3}))
        return out


@hookimpl
def register_analyzers(settings):
    return [Shouty()]
