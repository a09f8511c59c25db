// Formatting of numbers, sizes, durations and timestamps, and parsing of the
// publish form's timestamp field and the event browser's jump-to-time field.

const numberFormat = new Intl.NumberFormat('en-US');

export function formatNumber(value) {
  return value === null || value === undefined ? '–' : numberFormat.format(value);
}

/** "1 event", "2 events": the count formatted, with the noun's plural when it is not 1. */
export function plural(count, noun, nouns = `${noun}s`) {
  return `${formatNumber(count)} ${count === 1 ? noun : nouns}`;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** Seconds as a latency: "0.10 ms", "3.2 ms", "1.20 s"; null (no publish yet) as a dash. */
export function formatLatency(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  if (seconds < 1) {
    const ms = seconds * 1000;
    return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
  }
  return `${seconds.toFixed(2)} s`;
}

export function formatRate(perSecond) {
  if (!Number.isFinite(perSecond)) return '–';
  return perSecond >= 100 ? numberFormat.format(Math.round(perSecond)) : perSecond.toFixed(perSecond >= 10 ? 1 : 2);
}

export function formatUptime(seconds) {
  const whole = Math.floor(seconds);
  const days = Math.floor(whole / 86400);
  const hours = Math.floor((whole % 86400) / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes}m`;
  return `${minutes}m ${whole % 60}s`;
}

function pad(value, width = 2) {
  return String(value).padStart(width, '0');
}

/** Milliseconds since the epoch as "2025-01-31 12:00:00.123 UTC" or the local equivalent with its offset. */
export function formatTimestamp(milliseconds, utc) {
  if (milliseconds === null || milliseconds === undefined) return '–';
  const date = new Date(milliseconds);
  if (Number.isNaN(date.getTime())) return String(milliseconds);
  if (utc) {
    return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
      `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}.${pad(date.getUTCMilliseconds(), 3)} UTC`;
  }
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const zone = `${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)} ${zone}`;
}

/**
 * The publish form's timestamp: empty is 0 (the server's time), digits are milliseconds,
 * anything else must be a date Date.parse understands. Returns {value} or {error}.
 */
export function parseTimestampInput(text) {
  const trimmed = text.trim();
  if (trimmed === '') return { value: 0 };
  if (/^\d+$/.test(trimmed)) {
    const value = Number(trimmed);
    return Number.isSafeInteger(value) ? { value } : { error: 'the timestamp is too large' };
  }
  const parsed = Date.parse(trimmed);
  if (Number.isNaN(parsed) || parsed < 0) return { error: `not a timestamp or date: ${trimmed}` };
  return { value: parsed };
}

/**
 * A datetime-local field's value ("2026-12-05T21:10", seconds and milliseconds optional) as
 * milliseconds since the epoch, read as UTC or as the browser's local time; null when it is empty,
 * not such a value, or before 1970.
 */
export function parseDateTimeLocal(text, utc) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(text.trim());
  if (!match) return null;
  const [year, month, day, hours, minutes, seconds = '0', fraction = '0'] = match.slice(1);
  const parts = [Number(year), Number(month) - 1, Number(day), Number(hours), Number(minutes), Number(seconds),
    Number(fraction.padEnd(3, '0'))];
  const value = utc ? Date.UTC(...parts) : new Date(...parts).getTime();
  return Number.isFinite(value) && value >= 0 ? value : null;
}

/** Milliseconds since the epoch as a datetime-local field's value, in UTC or local time. */
export function dateTimeLocalValue(milliseconds, utc) {
  const date = new Date(milliseconds);
  const fields = utc
    ? [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds(), date.getUTCMilliseconds()]
    : [date.getFullYear(), date.getMonth() + 1, date.getDate(), date.getHours(), date.getMinutes(), date.getSeconds(), date.getMilliseconds()];
  const [year, month, day, hours, minutes, seconds, ms] = fields;
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hours)}:${pad(minutes)}:${pad(seconds)}.${pad(ms, 3)}`;
}

/** The zone a datetime-local field is read in: "UTC", or the browser's offset such as "UTC+01:00". */
export function zoneLabel(utc, at = new Date()) {
  if (utc) return 'UTC';
  const offset = -at.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  return `UTC${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}
