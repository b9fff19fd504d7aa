// Follows a task's server-sent events (GET /v1/tasks/{id}/events).
//
// A browser's EventSource cannot send an Authorization header, so this reads
// the stream with fetch() (which can) and parses the event-stream format
// itself: the token never goes into a URL, where it would reach access logs.
// The stream ends by itself after the task's final state; if it breaks
// before that (the server restarted, a proxy timed out) it is opened again
// after a pause that grows to 10 s.
import { ApiError, authHeaders, check, type Task } from "./api";

export interface TaskEvents {
  onTask: (t: Task) => void;
  onDeleted?: () => void;
  onError?: (e: unknown) => void;
}

const FINAL = new Set(["succeeded", "dead", "cancelled"]);

export function followTask(id: string, handlers: TaskEvents): () => void {
  const abort = new AbortController();
  let pause = 500;

  const run = async () => {
    while (!abort.signal.aborted) {
      let finished = false;
      try {
        const res = await check(
          await fetch(`/v1/tasks/${encodeURIComponent(id)}/events`, {
            headers: { Accept: "text/event-stream", ...authHeaders() },
            signal: abort.signal,
          }),
        );
        pause = 500;
        finished = await read(res, handlers);
      } catch (e) {
        if (abort.signal.aborted) return;
        if (e instanceof ApiError && e.status === 404) {
          handlers.onDeleted?.(); // gone while the stream was down
          return;
        }
        handlers.onError?.(e);
      }
      if (finished) return;
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 10_000);
    }
  };
  void run();
  return () => abort.abort();
}

// Reads one response's events; true once the task reached a final state or
// was deleted (nothing more will come).
async function read(res: Response, handlers: TaskEvents): Promise<boolean> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  let finished = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return finished;
    buffer += value;
    let nl: number;
    while ((nl = buffer.search(/\r?\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer[nl] === "\r" ? 2 : 1));
      if (line === "") {
        if (event === "deleted") {
          handlers.onDeleted?.();
          finished = true;
        } else if (event === "task" && data.length > 0) {
          const task = JSON.parse(data.join("\n")) as Task;
          handlers.onTask(task);
          if (FINAL.has(task.state)) finished = true;
        }
        event = "message";
        data = [];
      } else if (line.startsWith(":")) {
        // a comment: the server's keep-alive
      } else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = text;
        if (field === "data") data.push(text);
      }
    }
  }
}
