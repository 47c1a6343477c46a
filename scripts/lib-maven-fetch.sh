# shellcheck shell=bash
# Fetches Java artifacts and their runtime dependencies from Maven Central into a flat directory of
# jars, so Apache Kafka (and Kafka Connect, Debezium) run with `java -cp 'DIR/*'` and no Docker.
#
# Source this file, then:
#   maven_fetch_jars DEST_DIR group:artifact:version [group:artifact:version ...]
#
# Idempotent: a DEST_DIR holding a `.complete` stamp written for the same artifact list is kept
# as it is, so a second run costs nothing. Jars go to DEST_DIR, never into the repository; Maven's
# own cache (~/.m2) makes re-fetching cheap too. Requires `mvn` and network access to Maven Central.
#
# Example (what scripts/kafka.sh does):
#   maven_fetch_jars "$SLUICE_CACHE/kafka-3.9.1/libs" org.apache.kafka:kafka_2.13:3.9.1
# Kafka Connect would add e.g. org.apache.kafka:connect-runtime:3.9.1 to its own directory.

maven_fetch_jars() {
  local dest="$1"
  shift
  if [ "$#" -eq 0 ]; then
    echo "maven_fetch_jars: no artifacts given" >&2
    return 2
  fi
  local wanted="$*"
  if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$wanted" ]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || { echo "maven_fetch_jars: mvn is not installed" >&2; return 1; }

  local work
  work="$(mktemp -d)"
  # A throwaway pom that depends on the artifacts; copy-dependencies then resolves the whole
  # runtime closure exactly as Maven would for a real project.
  {
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
    echo '<groupId>sluice.local</groupId><artifactId>jar-fetch</artifactId><version>1</version>'
    echo '<packaging>pom</packaging><dependencies>'
    local coord g a v
    for coord in "$@"; do
      IFS=: read -r g a v <<<"$coord"
      if [ -z "$g" ] || [ -z "$a" ] || [ -z "$v" ]; then
        echo "maven_fetch_jars: '$coord' is not group:artifact:version" >&2
        rm -rf "$work"
        return 2
      fi
      echo "<dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>"
    done
    echo '</dependencies></project>'
  } >"$work/pom.xml"

  mkdir -p "$dest"
  rm -f "$dest/.complete"
  if ! mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$dest" >"$work/mvn.log" 2>&1; then
    echo "maven_fetch_jars: Maven failed; its log follows" >&2
    cat "$work/mvn.log" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$work"
  echo "$wanted" >"$dest/.complete"
}
