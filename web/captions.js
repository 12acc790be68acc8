// Live captions: the user's words (partial while speaking, then final) and the character's reply.
//
// Replies arrive clause by clause (`reply` events); they join one line until the user's next
// final transcript, a typed message, or an interruption starts a new one.

export class Captions {
  // `labels` (the words the captions add: who spoke, the empty log) may be changed later, for
  // another language: {you, problem, empty}.
  constructor(container, { maxLines = 60, characterName = () => "Character", labels = {} } = {}) {
    this.container = container;
    this.maxLines = maxLines;
    this.characterName = characterName;
    this.labels = { you: "You", problem: "Problem", empty: "What you say and what the character answers appears here.", ...labels };
    this.userLine = null;
    this.replyLine = null;
    this.replyGen = null;
    this.lastTyped = "";
  }

  clear() {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = this.labels.empty;
    this.container.replaceChildren(empty);
    this.userLine = null;
    this.replyLine = null;
  }

  typed(text) {
    this.lastTyped = text;
    this.add("user", text);
    this.replyLine = null;
  }

  transcript(ev) {
    const text = (ev.text || "").trim();
    if (!text) return;
    if (ev.final && this.lastTyped && text === this.lastTyped) { // already shown when typed
      this.lastTyped = "";
      this.userLine = null;
      return;
    }
    if (!this.userLine) this.userLine = this.add("user", text);
    this.setText(this.userLine, text);
    this.userLine.classList.toggle("partial", !ev.final);
    if (ev.final) {
      this.userLine = null;
      this.replyLine = null;
    }
  }

  reply(ev) {
    const text = (ev.text || "").trim();
    if (!text) return;
    const gen = ev.turn ?? ev.generation ?? null;
    if (!this.replyLine || (gen !== null && gen !== this.replyGen)) {
      this.replyLine = this.add("character", "");
      this.replyGen = gen;
    }
    const current = this.replyLine.dataset.text || "";
    // Replies may arrive as growing text (replace) or as pieces (append).
    const next = text.startsWith(current) ? text : `${current} ${text}`.trim();
    this.setText(this.replyLine, next);
    if (ev.final) this.replyLine = null;
  }

  backchannel(text) {
    // The segment's transcript is already shown: mark it ("mm-hm" does not take the turn).
    const lines = [...this.container.querySelectorAll(".line.user")];
    const line = lines.reverse().find((l) => l.dataset.text === text) || this.add("user", text);
    line.classList.add("backchannel");
    line.title = "said while the character talked: it went on";
  }

  interrupted() {
    if (this.replyLine) this.replyLine.classList.add("cut");
    this.replyLine = null;
  }

  error(message) {
    this.add("error", message);
  }

  add(kind, text) {
    this.container.querySelector(".empty")?.remove();
    const p = document.createElement("p");
    p.className = `line ${kind}`;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = kind === "user" ? this.labels.you : kind === "character" ? this.characterName() : this.labels.problem;
    const body = document.createElement("span");
    body.className = "text";
    p.append(who, body);
    this.container.append(p);
    this.setText(p, text);
    while (this.container.children.length > this.maxLines) this.container.firstElementChild.remove();
    return p;
  }

  setText(line, text) {
    line.dataset.text = text;
    line.querySelector(".text").textContent = text;
    this.container.scrollTop = this.container.scrollHeight;
  }
}
