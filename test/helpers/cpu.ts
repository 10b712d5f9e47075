/**
 * "Never a hang" bounds for fuzz cases, in CPU time rather than wall time: a shared, loaded
 * machine stretches wall time by whatever its neighbours do, while a hang (a pathological regex,
 * unbounded recursion, a quadratic loop) burns CPU.
 */
export const CASE_CPU_MS = 200;

/** CPU milliseconds (user + system) this process has spent since `start` (process.cpuUsage()). */
export function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}
