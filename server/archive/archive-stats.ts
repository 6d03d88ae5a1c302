/**
 * The broker's archive counters in one place (issue 12 exports them as Prometheus metrics):
 * plain numbers that only grow, shared by every partition's uploader (partition-archive.ts)
 * and the archive read path. DescribeArchive (SPEC §6.27) reports them as they are.
 */
export class ArchiveStats {
  /** .log bytes of segments committed to the archive. */
  bytesUploaded = 0;
  segmentsUploaded = 0;
  /** Upload attempts that failed (each retried later). */
  uploadFailures = 0;
  /** Segments removed from the archive by retention. */
  segmentsDeleted = 0;
  /** Bytes fetched from the archive store by reads (the read lane counts these). */
  bytesRead = 0;
  readFailures = 0;
}
