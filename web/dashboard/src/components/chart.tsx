// A uPlot line chart of per-second series (the x axis in Unix seconds).
// uPlot draws on a canvas and is ~50 KB; the chart is re-created when the
// series' names change and fed new data otherwise.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
}

export function Chart(props: { title: string; start: number; series: Series[]; unit?: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = props.series.map((s) => s.label).join("|");
  const n = props.series[0]?.values.length ?? 0;
  const xs = Array.from({ length: n }, (_, i) => props.start + i);
  const data = [xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData;

  useEffect(() => {
    const el = box.current!;
    const width = () => Math.max(240, el.clientWidth);
    const opts: uPlot.Options = {
      width: width(),
      height: 180,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{}, { size: 64, values: (_u, ticks) => ticks.map((t) => `${t}${props.unit ?? ""}`) }],
      series: [
        {},
        ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: false })),
      ],
    };
    plot.current = new uPlot(opts, data, el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: width(), height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [key]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={props.title} />
    </figure>
  );
}
