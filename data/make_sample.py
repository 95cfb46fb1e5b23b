"""Writes the project's sample /biz/-style posts and their labels (seeded, so the output is reproducible).

    python data/make_sample.py         # rewrites data/sample_posts.jsonl, data/sample_labels.jsonl, data/images/

Posts come in threads (an opening post and replies), use cashtags and slang, and include sarcasm (labelled with
what the author meant, e.g. "great, another -40% day, love these bags" is bearish) and a few small images drawn here
with Pillow (a green or red chart arrow), some inline as base64 and some as a path; then memes rendered by
bizstream.memes (data/memes/: captions over charts and photos, some saying the opposite of the chart: sarcasm),
labelled with what the poster meant, their captions kept in the post's meta for the OCR tests and benchmark.
"""

from __future__ import annotations

import base64
import io
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageDraw

from bizstream.memes import Meme

HERE = Path(__file__).resolve().parent
COINS = ["$BTC", "$ETH", "$SOL", "$LINK", "$PEPE", "$DOGE", "$XRP", "$ADA", "$AVAX", "$ARB"]
NAMES = {"$BTC": "bitcoin", "$ETH": "eth", "$SOL": "sol", "$LINK": "link", "$PEPE": "pepe", "$DOGE": "doge",
         "$XRP": "xrp", "$ADA": "cardano", "$AVAX": "avax", "$ARB": "arb"}  # fmt: skip

BULLISH = [
    "{c} is going to moon, wagmi",
    "just loaded up more {c}, this is going parabolic",
    "{c} breakout confirmed, next stop ATH 🚀🚀",
    "comfy holding {c}, we're all gonna make it",
    "{n} pumping hard, told you anons to buy the dip",
    "{c} 10x incoming, devs are based and shipping",
    "bullish on {c}, accumulation is done, lfg",
    "{c} green candles all day, gains everywhere",
    "sold my car for {c}, lambo soon frens",
    "{n} to 100k, this is the bullrun",
    "{c} undervalued af, whales accumulating",
    "diamond hands on {c}, hodl and you will be rich",
]
BEARISH = [
    "{c} is a rug, devs dumped on us",
    "got rekt on {c} again, ngmi",
    "{c} dumping, bagholders crying",
    "{n} is a scam, get out while you can",
    "{c} chart looks dead, going to zero",
    "liquidated on my {c} long, this market is brutal",
    "{c} bleeding for weeks, pure capitulation",
    "{n} team sold everything, honeypot tier scam",
    "bearish on {c}, overvalued ponzi",
    "{c} crashed 40% overnight, absolute bloodbath",
    "anyone else bagholding {c}? worthless now",
    "{n} is a shitcoin, sell before it dumps more",
]
NEUTRAL = [
    "what exchange do you use to buy {c}?",
    "{c} moved sideways all week",
    "is {n} on coinbase yet?",
    "when is the {c} unlock?",
    "how do I bridge {c} to arbitrum",
    "{c} thread #{k}",
    "anyone know the {c} staking rate",
    "fed meeting tomorrow, watching {c}",
    "reading the {n} whitepaper tonight",
    "what wallet holds {c}",
    "{c} volume today about the same as yesterday",
    "new {n} listing announced for next month",
]
# Sarcasm: the words look bullish, the meaning is bearish (and once the other way round).
SARCASTIC_BEARISH = [
    "wow great, {c} down another 40%, love holding these bags",
    "{c} to the moon they said, now I eat ramen, thanks",
    "amazing investment {c}, only lost 90% so far",
    "yeah {n} is definitely going to 100k any day now, trust me bro",
    "best decision ever buying {c} at the top, truly genius",
    "so glad I didn't sell {c}, now it's worth nothing, wonderful",
]
SARCASTIC_BULLISH = [
    "oh no {c} only did a 5x this month, how terrible",
    "{c} up 300%, what a horrible problem to have",
]
REPLIES = {
    "bullish": ["this", "based, wagmi", "lfg 🚀", "bought more", "comfy", "{c} to the moon"],
    "bearish": ["ngmi", "rekt", "it's over", "sold at a loss, dump incoming", "scam coin", "cope"],
    "neutral": ["source?", "what's the ticker", "bump", "link?", "kek what", "same question"],
}


def _png(color: tuple[int, int, int], up: bool, seed: int) -> bytes:
    image = Image.new("RGB", (64, 64), (20, 20, 24))
    draw = ImageDraw.Draw(image)
    rnd = random.Random(seed)
    points = [(x, 48 - x * 0.5 + rnd.uniform(-4, 4) if up else 16 + x * 0.5 + rnd.uniform(-4, 4)) for x in range(4, 64, 6)]
    draw.line(points, fill=color, width=3)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# (caption, scene, what the poster meant, post text): bullish and bearish captions on charts that agree, captions that
# say the opposite of the chart (sarcasm: the chart is what happened), and neutral ones.
MEMES = [
    ("to the moon, we are all gonna make it", "green_chart", "bullish", "{c} today"),
    ("buy the dip, this is the bottom", "green_chart", "bullish", "called it"),
    ("number go up, wagmi", "green_chart", "bullish", ""),
    ("bull run confirmed, lambo soon", "green_chart", "bullish", "{n} pumping"),
    ("it's over, we got rugged", "red_chart", "bearish", "{c} bros..."),
    ("sell everything, this is going to zero", "red_chart", "bearish", ""),
    ("bloodbath, another rug pull", "red_chart", "bearish", "{n} chart"),
    ("rekt again, ngmi", "red_chart", "bearish", "my portfolio"),
    ("to the moon, we are all gonna make it", "red_chart", "bearish", "great day to hold {c}"),
    ("number go up, wagmi", "red_chart", "bearish", "{c} holders right now"),
    ("bull run confirmed, lambo soon", "red_chart", "bearish", ""),
    ("best investment of my life", "red_chart", "bearish", "{c} down 40% this week"),
    ("it's over, we got rugged", "green_chart", "bullish", "{c} bears today"),
    ("sell everything, this is going to zero", "green_chart", "bullish", "the fudders said"),
    ("when is the token unlock?", "photo", "neutral", "anyone know?"),
    ("what wallet do you use", "photo", "neutral", ""),
    ("gm anons", "photo", "neutral", "gm"),
    ("staking rewards explained", "photo", "neutral", "{n} thread"),
]


def memes(start: datetime) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Meme posts with rendered images (data/memes/) and their labels; seeded apart from the posts above."""
    rnd = random.Random(20261126)
    folder = HERE / "memes"
    folder.mkdir(exist_ok=True)
    posts: list[dict[str, object]] = []
    labels: list[dict[str, object]] = []
    styles = ["impact", "bar", "inverted"]
    for i in range(36):
        caption, scene, label, text = MEMES[i % len(MEMES)]
        coin = rnd.choice(COINS)
        meme = Meme(caption, scene, styles[(i // len(MEMES) + i) % 3], font=i % 2, seed=1000 + i)  # type: ignore[arg-type]
        data, mime = meme.encoded()
        name = f"meme-{i:03d}.{'jpg' if mime == 'image/jpeg' else 'png'}"
        (folder / name).write_bytes(data)
        post = {"id": f"meme-{i:03d}", "source": "4chan", "board": "biz", "created_at": (start + timedelta(minutes=17 * i)).isoformat(),
                "text": text.format(c=coin, n=NAMES[coin]), "image": {"path": f"data/memes/{name}"},
                "meta": {"caption": caption, "scene": scene, "style": meme.style}}  # fmt: skip
        posts.append(post)
        labels.append({"post_id": post["id"], "rating": {"bearish": 1, "neutral": 2, "bullish": 3}[label],
                       "labeler": "bizstream-sample", "text": post["text"]})  # fmt: skip
    return posts, labels


def main() -> None:
    rnd = random.Random(20261125)
    start = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    images_dir = HERE / "images"
    images_dir.mkdir(exist_ok=True)
    posts: list[dict[str, object]] = []
    labels: list[dict[str, object]] = []
    post_no = 58_000_000
    for thread_no in range(60):
        coin = rnd.choice(COINS)
        mood = rnd.choices(["bullish", "bearish", "neutral", "sarcastic_bearish", "sarcastic_bullish"], [30, 30, 25, 12, 3])[0]
        pool = {"bullish": BULLISH, "bearish": BEARISH, "neutral": NEUTRAL,
                "sarcastic_bearish": SARCASTIC_BEARISH, "sarcastic_bullish": SARCASTIC_BULLISH}[mood]  # fmt: skip
        label = mood.removeprefix("sarcastic_")
        thread_id = str(post_no)
        when = start + timedelta(minutes=37 * thread_no)
        op: dict[str, object] = {
            "id": str(post_no), "thread_id": thread_id, "source": "4chan", "board": "biz",
            "created_at": when.isoformat(),
            "text": rnd.choice(pool).format(c=coin, n=NAMES[coin], k=rnd.randint(100, 999)),
        }  # fmt: skip
        if mood.startswith("sarcastic"):
            op["meta"] = {"sarcastic": True}
        if thread_no % 7 == 0:  # a few threads open with a chart image
            up = label == "bullish"
            png = _png((40, 200, 80) if up else (220, 50, 50), up, thread_no)
            if thread_no % 14 == 0:
                op["image"] = {"data": base64.b64encode(png).decode(), "mime": "image/png"}
            else:
                name = f"chart-{thread_id}.png"
                (images_dir / name).write_bytes(png)
                op["image"] = {"path": f"data/images/{name}"}
        posts.append(op)
        labels.append({"post_id": op["id"], "rating": {"bearish": 1, "neutral": 2, "bullish": 3}[label],
                       "labeler": "bizstream-sample", "text": op["text"]})  # fmt: skip
        parent = str(post_no)
        for reply_no in range(rnd.randint(2, 6)):
            post_no += 1
            reply_mood = rnd.choices([label, "bullish", "bearish", "neutral"], [50, 15, 15, 20])[0]
            text = rnd.choice(REPLIES[reply_mood]).format(c=coin)
            if rnd.random() < 0.5:
                text = f">>{parent}\n{text}"
            reply = {
                "id": str(post_no), "thread_id": thread_id, "source": "4chan", "board": "biz",
                "created_at": (when + timedelta(minutes=reply_no + 1)).isoformat(), "text": text, "reply_to": parent,
            }  # fmt: skip
            posts.append(reply)
            labels.append({"post_id": reply["id"], "rating": {"bearish": 1, "neutral": 2, "bullish": 3}[reply_mood],
                           "labeler": "bizstream-sample", "text": text})  # fmt: skip
            if rnd.random() < 0.3:
                parent = str(post_no)
        post_no += 1
    # Microblog-style posts with no thread: each is its own thread.
    for i in range(60):
        mood = rnd.choice(["bullish", "bearish", "neutral"])
        pool = {"bullish": BULLISH, "bearish": BEARISH, "neutral": NEUTRAL}[mood]
        coin = rnd.choice(COINS)
        post = {"id": f"mb-{i:03d}", "source": "microblog", "text": rnd.choice(pool).format(c=coin, n=NAMES[coin], k=i),
                "created_at": (start + timedelta(hours=i)).isoformat()}  # fmt: skip
        posts.append(post)
        labels.append({"post_id": post["id"], "rating": {"bearish": 1, "neutral": 2, "bullish": 3}[mood],
                       "labeler": "bizstream-sample", "text": post["text"]})  # fmt: skip
    # Memes come among the other posts, as on a board: one after every tenth post.
    meme_posts, meme_labels = memes(start + timedelta(days=3))
    for k, (meme_post, meme_label) in enumerate(zip(meme_posts, meme_labels, strict=True)):
        at = min(len(posts), 10 * (k + 1) + k)
        posts.insert(at, meme_post)
        labels.insert(at, meme_label)
    with (HERE / "sample_posts.jsonl").open("w") as fh:
        for post in posts:
            fh.write(json.dumps(post, ensure_ascii=False) + "\n")
    with (HERE / "sample_labels.jsonl").open("w") as fh:
        for label_row in labels:
            fh.write(json.dumps(label_row, ensure_ascii=False) + "\n")
    print(f"wrote {len(posts)} posts and {len(labels)} labels")


if __name__ == "__main__":
    main()
