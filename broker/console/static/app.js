// The klab console's page. It listens to /api/events (server-sent events:
// a JSON view of the cluster each time it changes) and redraws.
//
// Topic, group and client names come from clients, so none is ever put in
// the page as HTML: every element is built with createElement and every
// text set with textContent, which the browser never parses. A group named
// "<img src=x onerror=...>" shows as those characters.
"use strict";

let view = null;

// el builds an element: el("td", {class: "num"}, "42", child, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "onclick") e.addEventListener("click", v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function offset(n) {
  return n < 0 ? "?" : String(n);
}

// consoleURL is a broker console's page. A console listening on every
// interface (0.0.0.0, [::]) is reached at the host this page came from.
function consoleURL(addr) {
  const i = addr.lastIndexOf(":");
  let host = addr.slice(0, i);
  if (host === "" || host === "0.0.0.0" || host === "[::]") host = location.hostname;
  return "http://" + host + ":" + addr.slice(i + 1) + "/";
}

function setStatus(kind, text) {
  const s = document.getElementById("status");
  s.className = "status " + kind;
  s.dataset.status = kind;
  s.textContent = text;
}

function brokerState(b) {
  const proc = view.processes && view.processes[b.id];
  if (proc === "paused") return "paused";
  if (!b.alive) return "dead";
  if (b.shuttingDown) return "stopping";
  return "alive";
}

function drawSummary() {
  const brokers = view.brokers || [];
  const alive = brokers.filter(b => b.alive).length;
  let partitions = 0, under = 0, offline = 0;
  for (const t of view.topics || []) {
    for (const p of t.partitions) {
      partitions++;
      if (p.offline) offline++;
      else if (p.underReplicated) under++;
    }
  }
  const stat = (label, value, cls, key) =>
    el("div", {class: "stat " + (cls || ""), "data-stat": key}, el("b", {}, value), label);
  document.getElementById("summary").replaceChildren(
    stat("brokers alive", alive + " / " + brokers.length, alive < brokers.length ? "bad" : "", "brokers"),
    stat("controller", view.controller < 0 ? "none" : "broker " + view.controller, view.controller < 0 ? "bad" : "", "controller"),
    stat("partitions (all topics)", partitions, "", "partitions"),
    stat("under-replicated", under, under > 0 ? "warn" : "", "under-replicated"),
    stat("offline", offline, offline > 0 ? "bad" : "", "offline"),
  );
}

async function control(id, action) {
  const resp = await fetch("/api/brokers/" + id + "/" + action, {method: "POST", headers: {"X-Klab-Control": "1"}});
  if (!resp.ok) alert("broker " + id + " " + action + ": " + (await resp.text()));
}

function drawBrokers() {
  const cards = (view.brokers || []).map(b => {
    const state = brokerState(b);
    const proc = view.processes && view.processes[b.id];
    const card = el("div", {class: "broker " + state, "data-broker": b.id, "data-state": state},
      el("h3", {}, "Broker " + b.id, b.controller ? el("span", {class: "badge", "data-controller": "true"}, "controller") : null),
      el("div", {class: "state"}, state === "stopping" ? "controlled shutdown" : state),
      el("div", {class: "line"}, b.addr || "?", b.rack ? " · rack " + b.rack : ""),
      el("div", {class: "line"}, "leads " + b.leads + " partition" + (b.leads === 1 ? "" : "s")),
      el("div", {class: "line muted", title: "changes at every restart (KRaft's broker epoch plays this role)"},
        "incarnation " + (b.incarnation || "?")),
      b.console && b.alive ? el("div", {class: "line"}, el("a", {href: consoleURL(b.console)}, "its console"),
        " · ", el("a", {href: consoleURL(b.console) + "metrics"}, "/metrics")) : null,
      b.unreachable && b.alive ? el("div", {class: "line muted"}, "console not answering: " + b.unreachable) : null,
    );
    if (view.processes) {
      const btn = (action, label, title) => el("button", {title, "data-action": action, onclick: () => control(b.id, action)}, label);
      const controls = el("div", {class: "controls"});
      if (proc === "running") {
        controls.append(
          btn("stop", "stop", "SIGTERM: a controlled shutdown moves its leaderships away first"),
          btn("kill", "kill -9", "SIGKILL: a crash; the others notice by failure detection"),
          btn("pause", "pause", "SIGSTOP: alive but silent, as in a long GC pause"));
      } else if (proc === "paused") {
        controls.append(btn("resume", "resume", "SIGCONT"));
      } else {
        controls.append(btn("start", "start", "start it again, with its data"));
      }
      card.append(el("div", {class: "line muted"}, "process: " + (proc || "?")), controls);
    }
    return card;
  });
  document.getElementById("brokers").replaceChildren(...cards);
}

function drawPartitions() {
  const showInternal = document.getElementById("show-internal").checked;
  const rows = [];
  for (const t of view.topics || []) {
    if (t.internal && !showInternal) continue;
    for (const p of t.partitions) {
      const status = p.offline ? "offline" : p.underReplicated ? "under-replicated" : "ok";
      const maxEnd = Math.max(1, ...p.states.map(s => s.logEnd));
      const replicas = p.states.map(s => {
        const cls = ["replica", s.broker === p.leader ? "leader" : "", s.inIsr ? "" : "out", s.alive ? "" : "dead"].join(" ");
        const title = (s.inIsr ? "in sync" : "out of sync") + (s.alive ? "" : ", broker dead") +
          (s.fromLeader ? "; log end as the leader last saw it" : "");
        const bar = el("div", {class: "bar"},
          el("div", {class: "fill", style: "width:" + Math.max(0, 100 * s.logEnd / maxEnd) + "%"}),
          p.highWatermark >= 0 ? el("div", {class: "hw", style: "left:" + (100 * p.highWatermark / maxEnd) + "%"}) : null);
        return el("span", {class: cls, title, "data-replica": s.broker, "data-in-isr": s.inIsr},
          (s.broker === p.leader ? "★ " : "") + s.broker + " · " + offset(s.logEnd) + (s.fromLeader ? "*" : ""), bar);
      });
      rows.push(el("tr", {class: status, "data-topic": t.name, "data-partition": p.index, "data-status": status},
        el("td", {}, t.name),
        el("td", {class: "num"}, p.index),
        el("td", {class: "num", "data-field": "leader"}, p.leader < 0 ? "none" : p.leader),
        el("td", {class: "num", "data-field": "epoch"}, p.leaderEpoch),
        el("td", {"data-field": "replicas"}, ...replicas),
        el("td", {"data-field": "isr"}, (p.isr || []).join(",")),
        el("td", {class: "num", "data-field": "hw"}, offset(p.highWatermark)),
        el("td", {class: "status-" + status, "data-field": "status"}, status + (p.reassigning ? ", reassigning" : "")),
      ));
    }
  }
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", {colspan: 8, class: "empty"},
      "No topics yet. klab makes a topic only when asked (auto.create.topics.enable is false): " +
      "go run ./cmd/klab topics create --bootstrap-server <broker> --topic hello --partitions 3 --replication-factor 3")));
  }
  document.querySelector("#partitions tbody").replaceChildren(...rows);
}

function drawGroups() {
  const groups = (view.groups || []).map(g => {
    const rows = (g.lag || []).map(r => el("tr", {"data-topic": r.topic, "data-partition": r.partition},
      el("td", {}, r.topic),
      el("td", {class: "num"}, r.partition),
      el("td", {class: "num", "data-field": "committed"}, r.committed < 0 ? "-" : r.committed),
      el("td", {class: "num", "data-field": "log-end"}, offset(r.logEnd)),
      el("td", {class: "num", "data-field": "lag"}, r.lag < 0 ? "-" : r.lag),
      el("td", {}, r.memberId || "-"),
      el("td", {}, r.host || "-"),
      el("td", {}, r.clientId || "-"),
    ));
    return el("div", {class: "group", "data-group": g.id},
      el("h3", {}, el("span", {"data-field": "name"}, g.id)),
      el("div", {class: "line muted"},
        g.state + " · coordinator broker " + g.coordinator + " · " + (g.members || []).length + " member" +
        ((g.members || []).length === 1 ? "" : "s") + (g.protocol ? " · assignor " + g.protocol : "") +
        " · total lag " + g.totalLag),
      el("table", {},
        el("thead", {}, el("tr", {}, ...["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"].map(h => el("th", {}, h)))),
        el("tbody", {}, ...rows)));
  });
  if (groups.length === 0) {
    groups.push(el("p", {class: "empty"}, "No consumer groups yet. Start one: kcat -b <broker> -G mygroup <topic>"));
  }
  document.getElementById("groups").replaceChildren(...groups);
}

function draw() {
  if (!view) return;
  setText("cluster-id", "cluster " + view.clusterId);
  setText("served", view.served);
  setText("updated", new Date().toLocaleTimeString());
  setText("metadata-offset", view.metadataOffset);
  // Metrics are each broker's own: `klab cluster`'s console has none.
  document.getElementById("metrics").replaceChildren(...(view.processes
    ? ["metrics on each broker's console"]
    : [el("a", {href: "/metrics"}, "/metrics")]));
  drawSummary();
  drawBrokers();
  drawPartitions();
  drawGroups();
}

function connect() {
  const events = new EventSource("/api/events");
  events.onopen = () => setStatus("live", "live");
  events.onmessage = e => {
    const msg = JSON.parse(e.data);
    if (msg.error) {
      setStatus("error", msg.error);
      return;
    }
    view = msg;
    setStatus("live", "live");
    draw();
  };
  // EventSource reconnects by itself; say so meanwhile. If the broker
  // serving this page is the one that died, the cards name the others'
  // consoles.
  events.onerror = () => setStatus("reconnecting", "reconnecting… (is this broker down? try another's console)");
}

document.getElementById("show-internal").addEventListener("change", draw);
connect();
