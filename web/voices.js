// The voice panel: pick a voice for the current character, describe one in words, hear it, save
// it. Uses GET /v1/voices, POST /v1/voices/design and /preview (WAV) and POST /v1/voices, and
// PUT /v1/characters/{id}/voice to give the character the chosen voice (the page's key may do
// that for characters it created; the bundled samples keep theirs).

export class VoicePanel {
  constructor({ root, api, onChosen }) {
    this.root = root;
    this.api = api;
    this.onChosen = onChosen;
    this.voices = [];
    this.character = null;
    this.lastPreview = null; // {spec, bytes, seconds}
    this.q = (sel) => root.querySelector(sel);
    this.q(".voice-preview").addEventListener("click", () => this.preview());
    this.q(".voice-save").addEventListener("click", () => this.save());
    this.q(".voice-use").addEventListener("click", () => this.use());
    this.q(".voice-prompt").addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); this.preview(); }
    });
    this.q(".voice-select").addEventListener("change", () => {
      this.q(".voice-prompt").value = "";
      this.showNotes([]);
    });
  }

  get state() {
    return {
      voices: this.voices.map((v) => v.id),
      selected: this.q(".voice-select").value,
      character: this.character ? { id: this.character.id, voice: this.character.voice } : null,
      lastPreview: this.lastPreview,
      status: this.q(".voice-status").textContent,
    };
  }

  async load() {
    const body = await this.api("/v1/voices");
    this.voices = body.voices;
    this.render();
  }

  render() {
    const select = this.q(".voice-select");
    const keep = select.value;
    select.replaceChildren();
    const groups = [["Built-in", (v) => v.kind === "builtin"], ["Saved", (v) => v.kind !== "builtin"]];
    for (const [label, test] of groups) {
      const items = this.voices.filter(test);
      if (!items.length) continue;
      const group = document.createElement("optgroup");
      group.label = label;
      for (const v of items) {
        const option = document.createElement("option");
        option.value = v.id;
        option.textContent = v.kind === "matched" ? `${v.name} (matched)` : v.name;
        group.append(option);
      }
      select.append(group);
    }
    const wanted = this.character?.voice || keep;
    if (wanted && this.voices.some((v) => v.id === wanted)) select.value = wanted;
  }

  setCharacter(character) {
    this.character = character;
    this.q(".voice-for").textContent = character ? character.name : "the character";
    const use = this.q(".voice-use");
    use.disabled = !character || character.sample;
    use.title = character?.sample ? "The bundled characters keep their voice: upload your own" : "";
    this.render();
  }

  status(text, kind = "") {
    const s = this.q(".voice-status");
    s.textContent = text;
    s.dataset.kind = kind;
  }

  showNotes(notes) {
    const list = this.q(".voice-notes");
    list.replaceChildren(...notes.map((n) => Object.assign(document.createElement("li"), { textContent: n })));
  }

  // The voice being worked on: the prompt's design if a prompt is typed, else the selection.
  async current() {
    const prompt = this.q(".voice-prompt").value.trim();
    if (!prompt) return { voice: this.q(".voice-select").value };
    const answer = await this.api("/v1/voices/design", { method: "POST", json: { prompt } });
    this.showNotes(answer.notes.length ? answer.notes : ["no voice words understood: the bundled voice"]);
    return { prompt, spec: answer.id };
  }

  async preview() {
    const button = this.q(".voice-preview");
    button.disabled = true;
    this.status("Making the preview…");
    try {
      const what = await this.current();
      const json = what.prompt ? { prompt: what.prompt } : { voice: what.voice };
      json.text = this.q(".voice-text").value.trim() || undefined;
      const res = await this.api("/v1/voices/preview", { method: "POST", json, raw: true });
      const blob = await res.blob();
      const audio = this.q(".voice-audio");
      if (audio.src) URL.revokeObjectURL(audio.src);
      audio.src = URL.createObjectURL(blob);
      await new Promise((resolve) => { audio.onloadedmetadata = resolve; audio.onerror = resolve; });
      this.lastPreview = { spec: what.spec || what.voice, bytes: blob.size, seconds: audio.duration };
      this.status("Here it is.", "ok");
      audio.play().catch(() => this.status("Press play to hear it.", "ok"));
    } catch (err) {
      this.status(`The preview failed: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  async save() {
    const prompt = this.q(".voice-prompt").value.trim();
    if (!prompt) { this.status("Describe the voice first (e.g. “a calm older woman”).", "error"); return; }
    const name = this.q(".voice-name").value.trim() || prompt.slice(0, 60);
    try {
      const saved = await this.api("/v1/voices", { method: "POST", json: { name, prompt } });
      this.voices.push(saved);
      this.q(".voice-prompt").value = "";
      this.render();
      this.q(".voice-select").value = saved.id;
      this.status(`Saved “${saved.name}”.`, "ok");
    } catch (err) {
      this.status(`Could not save the voice: ${err.message}`, "error");
    }
  }

  async use() {
    if (!this.character) return;
    try {
      const what = await this.current();
      const voice = what.spec || what.voice;
      const updated = await this.api(`/v1/characters/${encodeURIComponent(this.character.id)}/voice`, {
        method: "PUT", json: { voice },
      });
      if (!this.voices.some((v) => v.id === voice)) {
        this.voices.push({ id: voice, name: what.prompt || voice, kind: "design", params: {} });
      }
      this.character = updated;
      this.render();
      this.status(`${updated.name} now speaks with this voice.`, "ok");
      this.onChosen(updated);
    } catch (err) {
      this.status(`Could not change the voice: ${err.message}`, "error");
    }
  }
}
