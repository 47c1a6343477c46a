// The package ships no types: its result is checked by runner/test/http/prometheus-text.ts.
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): unknown;
}
