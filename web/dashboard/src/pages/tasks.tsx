// Tasks: filter by queue, state and type; find one by id or unique key; page
// with cursors; select several and retry, cancel or delete them at once
// (POST /v1/tasks/bulk answers what happened to each).
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, post, query, STATES, type BulkResult, type Queue, type Task } from "../api";
import { Section, StateBadge, Time } from "../components/bits";
import { errorText } from "../format";
import { usePoll } from "../poll";
import { href, navigate, type Route } from "../router";

const ID = /^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$/;

export function Tasks({ route }: { route: Route }) {
  const p = route.params;
  const filters = {
    queue: p.get("queue") ?? "",
    state: p.get("state") ?? "",
    type: p.get("type") ?? "",
    cursor: p.get("cursor") ?? "",
  };
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [note, setNote] = useState<string>("");
  const [busy, setBusy] = useState(false);
  const [find, setFind] = useState("");
  const [typeInput, setTypeInput] = useState(filters.type);

  // A selection belongs to the page it was made on.
  useEffect(() => setSelected(new Set()), [filters.queue, filters.state, filters.type, filters.cursor]);
  const queues = usePoll((s) => get<{ queues: Queue[] }>("/v1/queues", s), 10000, []);
  const list = usePoll(
    (s) =>
      get<{ tasks: Task[]; next_cursor: string | null }>(
        "/v1/tasks" + query({ ...filters, limit: 50 }),
        s,
      ),
    3000,
    [filters.queue, filters.state, filters.type, filters.cursor],
  );

  const go = (change: Partial<typeof filters>) => {
    setSelected(new Set());
    // A new filter starts from the first page.
    const next = { ...filters, cursor: "", ...change };
    navigate(href("tasks", next));
  };

  const tasks = list.data?.tasks ?? [];
  // Only what is shown can be acted on: a task that left the list since it
  // was ticked (it was retried, say) drops out of the selection.
  const chosen = tasks.filter((t) => selected.has(t.id)).map((t) => t.id);
  const allChosen = tasks.length > 0 && chosen.length === tasks.length;
  const toggle = (id: string) => {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  };

  const bulk = async (action: "retry" | "cancel" | "delete") => {
    const ids = chosen;
    if (action === "delete" && !confirm(`Delete ${ids.length} task(s)?`)) return;
    setBusy(true);
    try {
      const r = await post<BulkResult>("/v1/tasks/bulk", { action, ids });
      setNote(
        `${action}: ` +
          Object.entries(r.counts)
            .map(([k, n]) => `${n} ${k.replace(/_/g, " ")}`)
            .join(", "),
      );
      setSelected(new Set());
      list.refresh();
    } catch (e) {
      setNote(`${action} failed: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };

  const onFind = async (e: Event) => {
    e.preventDefault();
    const what = find.trim();
    if (!what) return;
    setNote("");
    try {
      // Something shaped like an id is tried as one first; unique keys are
      // often ULIDs too, so a miss goes on to the keys.
      if (ID.test(what)) {
        const found = await get<Task>(`/v1/tasks/${what}`).catch((err) => {
          if (err instanceof ApiError && err.status === 404) return null;
          throw err;
        });
        if (found) {
          navigate(href(`tasks/${what}`));
          return;
        }
      }
      const r = await get<{ tasks: Task[] }>("/v1/tasks" + query({ unique_key: what }));
      if (r.tasks.length > 0) navigate(href(`tasks/${r.tasks[0].id}`));
      else setNote(`No task has the id “${what}”, and no unfinished task holds it as its unique key.`);
    } catch (err) {
      setNote(`Find failed: ${errorText(err)}`);
    }
  };

  return (
    <div class="page">
      <Section title="Tasks">
        <div class="toolbar">
          <form class="filters" onSubmit={(e) => { e.preventDefault(); go({ type: typeInput.trim() }); }}>
            <label>
              Queue
              <select value={filters.queue} onChange={(e) => go({ queue: e.currentTarget.value })}>
                <option value="">all</option>
                {(queues.data?.queues ?? []).map((q) => (
                  <option value={q.name}>{q.name}</option>
                ))}
                {filters.queue && !queues.data?.queues.some((q) => q.name === filters.queue) && (
                  <option value={filters.queue}>{filters.queue}</option>
                )}
              </select>
            </label>
            <label>
              State
              <select value={filters.state} onChange={(e) => go({ state: e.currentTarget.value })}>
                <option value="">all</option>
                {STATES.map((s) => (
                  <option value={s}>{s}</option>
                ))}
              </select>
            </label>
            <label>
              Type
              <input
                value={typeInput}
                placeholder="any"
                onInput={(e) => setTypeInput(e.currentTarget.value)}
                onBlur={() => typeInput.trim() !== filters.type && go({ type: typeInput.trim() })}
              />
            </label>
          </form>
          <form class="find" onSubmit={onFind} role="search">
            <label>
              Find
              <input
                value={find}
                placeholder="task id or unique key"
                onInput={(e) => setFind(e.currentTarget.value)}
              />
            </label>
            <button type="submit">Find</button>
          </form>
        </div>

        <div class="bulk" aria-live="polite">
          <span>{chosen.length} selected</span>
          <button disabled={busy || chosen.length === 0} onClick={() => bulk("retry")}>
            Retry selected
          </button>
          <button disabled={busy || chosen.length === 0} onClick={() => bulk("cancel")}>
            Cancel selected
          </button>
          <button class="danger" disabled={busy || chosen.length === 0} onClick={() => bulk("delete")}>
            Delete selected
          </button>
          {note && <span class="note" role="status">{note}</span>}
        </div>

        <div class="table-wrap">
          <table class="tasks">
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select every task on this page"
                    checked={allChosen}
                    onChange={() => setSelected(allChosen ? new Set() : new Set(tasks.map((t) => t.id)))}
                  />
                </th>
                <th scope="col">Task</th>
                <th scope="col">Type</th>
                <th scope="col">Queue</th>
                <th scope="col">State</th>
                <th scope="col" class="num">Attempt</th>
                <th scope="col">Created</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {tasks.map((t) => (
                <tr data-id={t.id} class={selected.has(t.id) ? "chosen" : ""}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Select task ${t.id}`}
                      checked={selected.has(t.id)}
                      onChange={() => toggle(t.id)}
                    />
                  </td>
                  <td>
                    <a class="mono" href={href(`tasks/${t.id}`)}>
                      {t.id}
                    </a>
                  </td>
                  <td>{t.type}</td>
                  <td>{t.queue}</td>
                  <td>
                    <StateBadge state={t.state} />
                  </td>
                  <td class="num">
                    {t.attempt}/{t.max_attempts}
                  </td>
                  <td>
                    <Time at={t.created_at} />
                  </td>
                  <td class="error-cell" title={t.last_error ?? ""}>
                    {t.last_error ?? ""}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {list.data && tasks.length === 0 && (
          <p class="muted">
            {list.data.next_cursor
              ? "None among the 10,000 tasks examined for this page; older ones may match (Older →)."
              : "No tasks match."}
          </p>
        )}
        {list.error !== undefined && <p class="error">Could not list tasks: {errorText(list.error)}</p>}
        <nav class="pager" aria-label="Pages">
          {filters.cursor && (
            <button onClick={() => history.back()}>
              ← Newer
            </button>
          )}
          {filters.cursor && <a href={href("tasks", { ...filters, cursor: undefined })}>First page</a>}
          {list.data?.next_cursor && (
            <button onClick={() => navigate(href("tasks", { ...filters, cursor: list.data!.next_cursor! }))}>
              Older →
            </button>
          )}
        </nav>
      </Section>
    </div>
  );
}
