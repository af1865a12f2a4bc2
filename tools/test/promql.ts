// The PromQL the project ships: every expression of the Grafana dashboards
// (deploy/grafana/dashboards) and of the alert rules
// (deploy/prometheus/alerts.yml). dashboards.test.ts checks the names they use;
// prometheus.test.ts runs them against a real Prometheus.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";

export const repoRoot = path.resolve(import.meta.dirname, "../..");
const dashboardsDir = path.join(repoRoot, "deploy/grafana/dashboards");
export const dashboardFiles = readdirSync(dashboardsDir).filter((f) => f.endsWith(".json"));
export const dashboards = dashboardFiles.map((file) => ({ file, json: JSON.parse(readFileSync(path.join(dashboardsDir, file), "utf8")) }));

export interface Expr {
  where: string;
  expr: string;
}

/** Every dashboard PromQL expression: panel targets (rows nest panels too) and query variables. */
export function dashboardExpressions(): Expr[] {
  const out: Expr[] = [];
  const walk = (file: string, panels: any[]) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) if (target.expr) out.push({ where: `${file}: ${panel.title} (${target.refId})`, expr: target.expr });
      walk(file, panel.panels);
    }
  };
  for (const { file, json } of dashboards) {
    walk(file, json.panels);
    for (const variable of json.templating?.list ?? []) {
      const query = typeof variable.query === "string" ? variable.query : variable.query?.query;
      const inner = /^label_values\((.+),\s*\w+\)$/.exec(query ?? "")?.[1] ?? /^label_values\((\w+)\)$/.exec(query ?? "")?.[1];
      if (inner) out.push({ where: `${file}: variable ${variable.name}`, expr: inner });
    }
  }
  return out;
}

export const alertsFile = path.join(repoRoot, "deploy/prometheus/alerts.yml");

/** Every alert rule: its name and expression. */
export function alertExpressions(): Array<Expr & { alert: string }> {
  const groups = (parse(readFileSync(alertsFile, "utf8")) as { groups: Array<{ rules: Array<{ alert?: string; expr: string }> }> }).groups;
  return groups.flatMap((g) => g.rules.filter((r) => r.alert).map((r) => ({ alert: r.alert!, where: `alerts.yml: ${r.alert}`, expr: r.expr.trim() })));
}

/** Grafana's variables as Prometheus would see them after interpolation. */
export const interpolate = (expr: string, vars: { service?: string; rateInterval?: string } = {}) =>
  expr
    .replaceAll("$__rate_interval", vars.rateInterval ?? "5m")
    .replaceAll("$__interval", "1m")
    .replaceAll("$service", vars.service ?? "auth")
    .replaceAll("$method", ".+");
