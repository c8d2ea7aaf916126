// JavaScript for src/web/event_source.rs.

/** A delivered frame's shape, from the strings of an EventSource event. */
export function pageFrame(id, event, data) {
  return { id, event, data };
}
