// A time series chart (uPlot), sized to its container. The series data are
// given as columns: x (unix seconds) and one array per series.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  stroke: string;
  dash?: number[];
}

/** "20:37" or "20:37:05" in local time, for unix seconds. */
function clock(seconds: number, withSeconds: boolean): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => n.toString().padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}${withSeconds ? `:${p(d.getSeconds())}` : ''}`;
}

export function TimeChart({
  data,
  series,
  height = 240,
  formatValue,
  testid,
  label,
  xLabel,
}: {
  data: number[][];
  series: ChartSeries[];
  height?: number;
  formatValue: (v: number) => string;
  testid?: string;
  label: string;
  /** The legend's name for the time axis. */
  xLabel: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const format = useRef(formatValue);
  format.current = formatValue;

  // (Re)built when the series change (language switch renames them).
  const key = [xLabel, ...series.map((s) => s.label)].join('|');
  useEffect(() => {
    if (!box.current) return undefined;
    const width = Math.max(300, box.current.clientWidth);
    const opts: uPlot.Options = {
      width,
      height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(60, max * 1.1)] } },
      axes: [
        {
          stroke: '#4a5563',
          grid: { stroke: '#e3e7ec' },
          // Local 24-hour clock times, the same in every language.
          values: (u, splits) => {
            const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
            return splits.map((v) => clock(v, span < 600));
          },
        },
        {
          stroke: '#4a5563',
          grid: { stroke: '#e3e7ec' },
          size: 80,
          values: (_u, splits) => splits.map((v) => format.current(v)),
        },
      ],
      series: [
        { label: xLabel, value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '—' : clock(v, true)) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          width: 2,
          dash: s.dash,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '—' : format.current(v)),
        })),
      ],
    };
    plot.current = new uPlot(opts, data as uPlot.AlignedData, box.current);
    const ro = typeof ResizeObserver !== 'undefined'
      ? new ResizeObserver(() => {
          if (box.current && plot.current) {
            plot.current.setSize({ width: Math.max(300, box.current.clientWidth), height });
          }
        })
      : null;
    ro?.observe(box.current);
    return () => {
      ro?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, height]);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data]);

  return <div class="chart" ref={box} data-testid={testid} role="img" aria-label={label} />;
}
