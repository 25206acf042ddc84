// Grafana's Dashboard type leaves panel and annotation queries open (Record<string, unknown> and the
// key-less DataQuery). FinpulseDashboard narrows them to the grafana-clickhouse-datasource SQL query,
// so the plugin's query keys are type-checked too; it stays assignable to Dashboard (see wrapper).
import type { AnnotationQuery, Dashboard, DataSourceRef, Panel, RowPanel } from '@grafana/schema';

// A type literal (not an interface) so it keeps the implicit index signature Panel.targets needs;
// AnnotationQuery<ClickHouseSqlQuery> below requires it to satisfy DataQuery.
export type ClickHouseSqlQuery = {
  refId: string;
  hide?: boolean;
  datasource: DataSourceRef;
  editorType: 'sql';
  rawSql: string;
  // sqlds FormatQueryOption: 0 time series (long frames become wide), 1 table.
  format: 0 | 1;
  queryType?: 'timeseries' | 'table';
};

export interface ClickHousePanel extends Omit<Panel, 'targets' | 'datasource'> {
  datasource: DataSourceRef;
  targets: ClickHouseSqlQuery[];
}

export interface FinpulseDashboard extends Omit<Dashboard, 'panels' | 'annotations'> {
  uid: string;
  title: string;
  panels: Array<ClickHousePanel | RowPanel>;
  annotations: { list: Array<AnnotationQuery<ClickHouseSqlQuery>> };
}
