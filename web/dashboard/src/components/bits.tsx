// Small pieces every page uses.
import type { ComponentChildren } from "preact";
import type { TaskState } from "../api";
import { ago, local } from "../format";

// A table's header row: "Busy#" marks a numeric (right-aligned) column.
export function Head({ cols }: { cols: string[] }) {
  return (
    <thead>
      <tr>
        {cols.map((c) =>
          c.endsWith("#") ? (
            <th scope="col" class="num">
              {c.slice(0, -1)}
            </th>
          ) : (
            <th scope="col">{c}</th>
          ),
        )}
      </tr>
    </thead>
  );
}

export function StateBadge({ state }: { state: TaskState | string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">—</span>;
  return <time dateTime={at} title={local(at)}>{ago(at)}</time>;
}

export function Json({ value, label }: { value: unknown; label: string }) {
  if (value === undefined || value === null) return <p class="muted">none</p>;
  return (
    <pre class="json" aria-label={label} tabIndex={0}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function Section(props: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="card">
      <header class="card-head">
        <h2>{props.title}</h2>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}

export function Progress({ percent, message }: { percent: number; message?: string }) {
  const p = Math.max(0, Math.min(100, percent));
  return (
    <div class="progress-wrap">
      <div
        class="progress"
        role="progressbar"
        aria-valuenow={p}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-label="Progress"
      >
        <div class="progress-bar" style={{ width: `${p}%` }} />
      </div>
      <span class="progress-text">
        {p}%{message ? ` — ${message}` : ""}
      </span>
    </div>
  );
}
