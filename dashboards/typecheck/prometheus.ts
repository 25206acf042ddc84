// The "finpulse pipeline" dashboard reads Prometheus. @grafana/schema ships no Prometheus query type,
// so this one lists the keys the dashboard uses (the Grafana Prometheus query editor's names).
import type { AnnotationQuery, Dashboard, DataSourceRef, Panel, RowPanel } from '@grafana/schema';

export type PrometheusQuery = {
  refId: string;
  hide?: boolean;
  datasource: DataSourceRef;
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
};

export interface PrometheusPanel extends Omit<Panel, 'targets' | 'datasource'> {
  datasource: DataSourceRef;
  targets: PrometheusQuery[];
}

export interface PrometheusDashboard extends Omit<Dashboard, 'panels' | 'annotations'> {
  uid: string;
  title: string;
  panels: Array<PrometheusPanel | RowPanel>;
  annotations: { list: Array<AnnotationQuery<PrometheusQuery>> };
}
