// The grid playground's page: draws the snapshot, then follows /api/stream (server-sent events).
// Every text from the server is set with textContent, never parsed as HTML.
"use strict";

const page = { org: null, state: null, seq: 0, messages: new Map(), teams: {}, convs: {}, users: {} };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const teamName = (id) => (page.teams[id] && page.teams[id].name) || id || "?";
const userName = (id) => (page.users[id] && page.users[id].name) || id || "?";
const convName = (id) => (page.convs[id] && page.convs[id].label) || id || "?";
const clock = (at) => new Date(at * 1000).toLocaleTimeString([], { hour12: false });

async function send(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// -- the org ---------------------------------------------------------------------------------

function drawOrg(org) {
  page.org = org;
  page.teams = Object.fromEntries(org.teams.map((t) => [t.id, t]));
  page.users = Object.fromEntries(org.users.map((u) => [u.id, u]));
  page.convs = Object.fromEntries(org.conversations.map((c) => [c.id, c]));
  document.getElementById("org-name").textContent = `${org.enterprise.name} (${org.enterprise.id})`;
  document.getElementById("store").textContent = `store: ${org.store}`;
  const plugins = org.plugins.map((p) => p.name).join(", ") || "none";
  document.getElementById("plugins").textContent = `plugins: ${plugins}`;
  const select = document.getElementById("conversation");
  const chosen = select.value;
  select.replaceChildren(...org.conversations.map((c) => el("option", { value: c.id, text: `${c.label} (${c.kind})` })));
  if (chosen) select.value = chosen;
  drawUsers();
}

function drawUsers() {
  const conv = page.convs[document.getElementById("conversation").value];
  const select = document.getElementById("user");
  const chosen = select.value;
  const members = conv ? conv.members : [];
  select.replaceChildren(
    ...members.map((id) => el("option", { value: id, text: `${userName(id)} (${teamName(page.users[id].home_team)})` })),
  );
  if (members.includes(chosen)) select.value = chosen;
}

function faultButton(label, fault, team, extra) {
  return el("button", {
    type: "button",
    class: "fault",
    "data-fault": fault,
    "data-team": team,
    disabled: extra && extra.disabled,
    title: extra && extra.title,
    onclick: () => send("/api/faults", { fault, team }).then(drawState).catch(showError),
  }, label);
}

function drawTeams(state) {
  const available = page.org.faults;
  const cards = state.teams.map((t) => {
    const bots = page.teams[t.id].bots;
    const head = el("div", { class: "team-head" }, el("b", { text: t.name }), " ", el("code", { text: t.id }));
    if (!t.installed) {
      return el("div", { class: "team team-none", "data-team": t.id }, head, el("div", { class: "muted", text: "no app installed: its users reach the grid through the others" }));
    }
    const f = t.faults || {};
    const beat = t.heartbeat === null ? "heartbeat unknown" : t.heartbeat ? "heartbeat alive" : "heartbeat lapsed";
    const status = el("div", { class: "team-status" },
      el("span", { class: `state state-${t.state}`, text: t.state || "?" }), " · ",
      el("span", { class: `heartbeat heartbeat-${t.heartbeat}`, text: beat }), " · ",
      el("span", { class: "sockets", text: `${t.sockets} socket${t.sockets === 1 ? "" : "s"}` }));
    const buttons = el("div", { class: "buttons" },
      f.cut ? faultButton("reconnect", "reconnect", t.id) : faultButton("cut socket", "cut", t.id, { disabled: f.revoked }),
      faultButton(f.revoked ? "revoked" : "revoke", "revoke", t.id, { disabled: f.revoked }),
      f.lag ? faultButton(`unlag (${f.lag} s)`, "unlag", t.id)
        : faultButton("lag 1 s", "lag", t.id, { disabled: !available.lag, title: available.lag_note }));
    const error = t.error ? el("div", { class: "error", text: t.error }) : null;
    return el("div", { class: `team ${t.state === "connected" ? "" : "team-down"}`, "data-team": t.id }, head,
      el("div", { class: "muted" }, bots.map((b) => `bot ${b.bot_user_id} (${b.app})`).join(", ")), status, error, buttons);
  });
  document.getElementById("teams").replaceChildren(...cards);
}

function drawRedis(state) {
  const box = document.getElementById("redis");
  const available = page.org.faults;
  if (!available.redis) {
    box.replaceChildren(el("div", { class: "muted", text: available.redis_note || "" }));
    return;
  }
  const stopped = state.store.stopped;
  box.replaceChildren(el("div", { class: "team" },
    el("div", { class: "team-head" }, el("b", { text: "Redis" }), " ", el("code", { text: page.org.store })),
    el("div", { class: "team-status" }, el("span", { class: `state state-${stopped ? "stopped" : "connected"}`, text: stopped ? "stopped" : "running" }),
      " · ", state.store.reachable ? "gridbot reaches it" : "gridbot cannot reach it"),
    el("div", { class: "buttons" }, stopped ? faultButton("start Redis", "redis_start", null) : faultButton("stop Redis", "redis_stop", null))));
}

function drawConversations(state) {
  const elected = Object.fromEntries((state.elections || []).map((e) => [e.channel, e]));
  const rows = page.org.conversations.map((c) => {
    const e = elected[c.id];
    const who = e ? `${teamName(e.team)}${e.epoch > 1 ? ` (epoch ${e.epoch})` : ""}` : "not yet";
    const teams = `teams: ${c.teams.map(teamName).join(", ")} · bots: ${c.bot_teams.map(teamName).join(", ") || "none"}`;
    return el("tr", { "data-channel": c.id },
      el("td", {}, el("b", { text: c.label }), " ", el("span", { class: "muted", text: c.kind }),
        el("div", { class: "muted", text: teams })),
      el("td", { class: "elected", text: who }));
  });
  document.querySelector("#conversations tbody").replaceChildren(...rows);
}

function drawState(state) {
  page.state = state;
  const c = state.counters;
  document.getElementById("counters").textContent =
    `handled ${c.handled} · duplicates ${c.duplicate} · standby ${c.standby} · rescued ${c.rescued} · takeovers ${c.takeovers}`;
  drawTeams(state);
  drawRedis(state);
  drawConversations(state);
}

// -- messages --------------------------------------------------------------------------------

function decisionText(story, copy) {
  if (copy.decisions.length) return copy.decisions.join(" → ");
  if (!copy.sockets.length) return story.quiet ? "no copy: no socket" : "no copy yet";
  return story.quiet ? "no decision logged" : "…";
}

function drawMessage(story) {
  const key = `${story.channel}/${story.ts}`;
  const bots = (page.convs[story.channel] || { bot_teams: [] }).bot_teams;
  const copies = new Map(story.copies.map((c) => [c.team, c]));
  for (const team of bots) if (!copies.has(team)) copies.set(team, { team, sockets: [], decisions: [] });
  const rows = [...copies.values()].sort((a, b) => a.team.localeCompare(b.team)).map((copy) => {
    const decision = copy.decisions[copy.decisions.length - 1] || "none";
    const where = copy.sockets.length ? `socket ${copy.sockets.join(", ")}` : "";
    return el("tr", { class: "copy", "data-team": copy.team },
      el("td", {}, el("b", { text: teamName(copy.team) }), " ", el("span", { class: "muted", text: where })),
      el("td", { class: `decision decision-${decision}`, text: decisionText(story, copy),
        title: copy.decisions.length || !copy.sockets.length ? null
          : "gridbot logs no line for a copy that arrives after its event was claimed, nor for one it never read" }));
  });
  const who = story.user ? `${userName(story.user)} (${teamName(story.source_team)})` : "someone";
  const outcome = el("div", { class: "outcome" },
    "elected ", el("b", { class: "elected", text: story.elected ? teamName(story.elected) : "…" }),
    " · ", story.how === "rescued" ? "rescued by " : "handled by ",
    el("b", { class: "handled-by", text: story.handled_by ? teamName(story.handled_by) : "…" }));
  const card = el("article", { class: "message", "data-channel": story.channel, "data-ts": story.ts },
    el("div", { class: "msg-head" }, el("b", { text: who }), " in ", el("b", { text: convName(story.channel) }),
      " ", el("time", { class: "muted", text: clock(story.at) })),
    el("div", { class: "msg-text", text: story.text || "" }),
    el("table", { class: "copies" }, rows), outcome,
    story.replies.map((r) => el("div", { class: "reply", "data-team": r.team }, "↳ ", el("b", { text: teamName(r.team) }), ": ",
      el("span", { class: "reply-text", text: r.text }))),
    story.takeover ? el("div", { class: "takeover", text: `takeover: ${teamName(story.takeover.previous)} → ${teamName(story.takeover.team)}` }) : null,
    story.errors.map((e) => el("div", { class: "error", text: e })));
  const list = document.getElementById("messages");
  const old = page.messages.get(key);
  if (old) old.replaceWith(card);
  else list.prepend(card);
  page.messages.set(key, card);
  while (list.children.length > 200) {
    const last = list.lastElementChild;
    page.messages.delete(`${last.dataset.channel}/${last.dataset.ts}`);
    last.remove();
  }
}

function addTimeline(item) {
  const list = document.getElementById("timeline");
  list.prepend(el("li", { class: `level-${item.level}`, "data-event": item.event || "playground" },
    el("time", { class: "muted", text: clock(item.at) }), " ", item.text));
  while (list.children.length > 300) list.lastElementChild.remove();
}

// -- the stream ------------------------------------------------------------------------------

function showError(error) {
  document.getElementById("composer-error").textContent = error ? String(error.message || error) : "";
}

function connect() {
  const link = document.getElementById("link");
  const stream = new EventSource("/api/stream");
  stream.addEventListener("snapshot", (e) => {
    const snap = JSON.parse(e.data);
    page.seq = snap.seq;
    drawOrg(snap.org);
    drawState(snap.state);
    document.getElementById("messages").replaceChildren();
    page.messages.clear();
    snap.messages.forEach(drawMessage);
    document.getElementById("timeline").replaceChildren();
    snap.timeline.forEach(addTimeline);
    link.textContent = "live";
    link.className = "link-up";
  });
  const fresh = (item) => (item.seq > page.seq ? ((page.seq = item.seq), true) : false);
  stream.addEventListener("message", (e) => { const item = JSON.parse(e.data); if (fresh(item)) drawMessage(item.story); });
  stream.addEventListener("state", (e) => { const item = JSON.parse(e.data); if (fresh(item)) drawState(item.state); });
  stream.addEventListener("timeline", (e) => { const item = JSON.parse(e.data); if (fresh(item)) addTimeline(item); });
  stream.onerror = () => { link.textContent = "reconnecting…"; link.className = "link-down"; };
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("conversation").addEventListener("change", drawUsers);
  document.getElementById("heal").addEventListener("click", () => send("/api/faults", { fault: "heal" }).then(drawState).catch(showError));
  document.getElementById("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = document.getElementById("text");
    const body = {
      channel: document.getElementById("conversation").value,
      user: document.getElementById("user").value,
      text: text.value,
    };
    if (!body.text.trim()) return;
    // the stream brings the story (drawing this answer could overwrite a newer update)
    send("/api/messages", body).then(() => { showError(null); text.value = ""; }).catch(showError);
  });
  connect();
});
