"""Korean texts of the interface, applied to translations/ko/LC_MESSAGES/messages.po.

The .po file is the catalogue (what the app and the tests read); this table is how its Korean
was written and is re-applied (`python scripts/i18n_ko.py`) after `scripts/i18n.sh update`:
an entry here fills an empty or fuzzy message; a message without one stays empty and fails
tests/test_i18n_catalogue.py. Control-room vocabulary: 경보 (alarm), 주의 (caution), 심각 (critical),
관제 (control), 대기질 (air quality), 재난 센서 (disaster sensors).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

KO: dict[str, str] = {
    "No such page.": "그런 페이지가 없습니다.",
    "Role {role} may not open {permission} pages.": "{role} 역할은 {permission} 페이지를 열 수 없습니다.",
    "The form expired; reload the page.": "양식이 만료되었습니다. 페이지를 새로 고치십시오.",
    "Unknown or revoked device token.": "알 수 없거나 폐기된 장치 토큰입니다.",
    "The language must be one of: {langs}.": "언어는 다음 중 하나여야 합니다: {langs}.",
    "Pinned": "고정됨",
    "Bus routes (GTFS shapes)": "버스 노선 (GTFS 경로)",
    "District names": "구·군 이름",
    "Crime prevention": "방범",
    "Traffic": "교통",
    "Disaster watch": "재난 감시",
    "Other": "기타",
    "online": "정상 작동",
    "offline": "연결 끊김",
    "({n} s old)": "({n}초 전)",
    "1 h total": "1시간 누적",
    "12 h total": "12시간 누적",
    "3 h total": "3시간 누적",
    "24 h: PM10 (blue) PM2.5 (violet) µg/m³": "24시간: PM10(파랑) PM2.5(보라) µg/m³",
    "ALT {alt} m  HDG {hdg}°  {speed} m/s  BAT {bat} %":
        "고도 {alt} m  방위 {hdg}°  {speed} m/s  배터리 {bat} %",
    "Active alarms": "발생 중인 경보",
    "Activity wall: {n} most active cameras": "활동 상황판: 활동이 많은 카메라 {n}대",
    "Air (CAI PM grade)": "대기질 (통합대기환경지수 등급)",
    "Air quality": "대기질",
    "Alert": "경보",
    "Altitude (m)": "고도 (m)",
    "Analytics fps": "분석 fps",
    "Armed": "시동(무장)",
    "Battery (%)": "배터리 (%)",
    "Buses": "버스",
    "CAI": "통합대기환경지수",
    "CCTV": "CCTV",
    "CO (ppm)": "일산화탄소 CO (ppm)",
    "CONNECTING": "연결 중",
    "Camera {camera} is not a drone-mounted camera in config/cameras.yaml":
        "카메라 {camera}은(는) config/cameras.yaml에 드론 탑재 카메라로 등록되어 있지 않습니다",
    "Configured screens: {screens}": "설정된 화면: {screens}",
    "Critical": "심각",
    "DOWN": "중단",
    "Data flags (AirKorea)": "자료 상태 (에어코리아)",
    "Delay (s)": "지연 (초)",
    "Description": "설명",
    "Disaster sensors": "재난 센서",
    "District": "구·군",
    "Drones": "드론",
    "ERROR": "오류",
    "Errors": "오류",
    "Events": "이벤트",
    "Events - tap to locate": "이벤트 - 누르면 위치로 이동",
    "Feed health": "수집원 상태",
    "Feeds": "데이터 수집",
    "Field of view (°)": "화각 (°)",
    "GPS": "GPS",
    "Gimbal pitch (°)": "짐벌 각도 (°)",
    "Good": "좋음",
    "Grade (KR CAI)": "등급 (통합대기환경지수)",
    "Heading (°)": "방위 (°)",
    "High": "높음",
    "Home": "처음으로",
    "Incheon control room": "인천 통합관제센터",
    "Incheon integrated control - supervisor": "인천 통합관제 - 관제 책임자",
    "Incident command": "현장 지휘",
    "Incidents": "사건",
    "Inference (ms)": "추론 시간 (ms)",
    "Info": "정보",
    "Interface language": "화면 언어",
    "KST": "KST",
    "Keep this camera in this tile": "이 카메라를 이 칸에 고정",
    "Kind": "종류",
    "LIVE": "실시간",
    "Last activity": "최근 활동",
    "Latest events": "최근 이벤트",
    "Level": "단계",
    "Line counts": "통과 집계",
    "Live video": "실시간 영상",
    "Live video: {name}": "실시간 영상: {name}",
    "Low": "낮음",
    "Measured": "측정 시각",
    "Medium": "보통",
    "Mission": "임무",
    "Mode": "비행 모드",
    "Moderate": "보통",
    "Mounted on": "탑재 드론",
    "NO2 (ppm)": "이산화질소 NO2 (ppm)",
    "Name": "이름",
    "Next stop": "다음 정류장",
    "No CAI: missing": "지수 없음: 누락 항목",
    "No recent fix": "최근 위치 없음",
    "No wall screen {screen} in config/walls.yaml": "config/walls.yaml에 상황판 화면 {screen}이(가) 없습니다",
    "O3 (ppm)": "오존 O3 (ppm)",
    "OK": "정상",
    "Occupancy": "혼잡도",
    "Opened": "발생 시각",
    "PM10 (µg/m³)": "미세먼지 PM10 (µg/m³)",
    "PM10 24 h": "PM10 24시간",
    "PM10 and PM2.5, last 24 hours": "최근 24시간 PM10·PM2.5",
    "PM2.5 (µg/m³)": "초미세먼지 PM2.5 (µg/m³)",
    "PM2.5 24 h": "PM2.5 24시간",
    "Page not found": "페이지를 찾을 수 없습니다",
    "Password": "비밀번호",
    "People": "사람",
    "Pin": "고정",
    "Position from": "위치 기준 시각",
    "Privacy masking": "개인정보 가림",
    "RECONNECTING": "재연결 중",
    "Rain 12 h (mm)": "12시간 강수량 (mm)",
    "Rain 3 h (mm)": "3시간 강수량 (mm)",
    "Rejected messages": "거부된 메시지",
    "Role {role} may not open this page": "{role} 역할은 이 페이지를 열 수 없습니다",
    "Route": "노선",
    "Rule": "규칙",
    "SESSION ENDED": "세션 종료",
    "SO2 (ppm)": "아황산가스 SO2 (ppm)",
    "STALE": "지연",
    "STARTING": "시작 중",
    "Scale": "기준",
    "Sensors (level)": "센서 (경보 단계)",
    "Severity": "심각도",
    "Sign in": "로그인",
    "Sign in - Incheon control room": "로그인 - 인천 통합관제센터",
    "Sign out": "로그아웃",
    "Sign out - Incheon control room": "로그아웃 - 인천 통합관제센터",
    "Speed (km/h)": "속도 (km/h)",
    "Speed (m/s)": "속도 (m/s)",
    "Station": "측정소",
    "Status": "상태",
    "Threshold": "기준값",
    "Title": "제목",
    "Too many failed sign-ins. Try again in {minutes} min.":
        "로그인 실패가 너무 많습니다. {minutes}분 후에 다시 시도하십시오.",
    "Trip": "운행",
    "Type": "유형",
    "US EPA AQI": "미국 EPA AQI",
    "Unhealthy": "나쁨",
    "Unit": "단위",
    "User": "사용자",
    "Value": "값",
    "Vehicle": "차량",
    "Vehicles": "차량",
    "Very unhealthy": "매우나쁨",
    "Voltage (V)": "전압 (V)",
    "Wrong user or password.": "사용자 이름 또는 비밀번호가 틀렸습니다.",
    "age / contract": "경과 / 기준",
    "bicycle": "자전거",
    "bus": "버스",
    "buses late > 5 min": "5분 넘게 지연된 버스",
    "buses live": "운행 중인 버스",
    "cameras with activity": "활동 감지 카메라",
    "car": "승용차",
    "entities": "개체 수",
    "events (1 h)": "이벤트 (1시간)",
    "gone": "사라짐",
    "health unavailable": "상태를 가져올 수 없음",
    "history unavailable": "이력을 가져올 수 없음",
    "in": "진입",
    "last update": "마지막 갱신",
    "layer": "레이어",
    "live store unavailable": "실시간 저장소에 연결할 수 없음",
    "live video of {name}": "{name} 실시간 영상",
    "loading 24 h...": "24시간 자료 불러오는 중...",
    "motorcycle": "오토바이",
    "msg/s": "메시지/초",
    "no": "아니오",
    "no feed reports health": "상태를 보고하는 수집원이 없음",
    "no gateway reporting": "보고하는 게이트웨이가 없음",
    "no history yet": "아직 이력이 없음",
    "no live store configured": "실시간 저장소가 설정되지 않음",
    "no telemetry": "원격 측정 없음",
    "none": "없음",
    "out": "진출",
    "person": "사람",
    "person down (possible fall)": "쓰러진 사람 (낙상 의심)",
    "person loitering in {zone} ({seconds} s)": "{zone} 배회자 ({seconds}초)",
    "reasons": "사유",
    "rejects": "거부",
    "sensors over threshold": "기준 초과 센서",
    "snapshot": "스냅샷",
    "source": "수집원",
    "state": "상태",
    "truck": "트럭",
    "updated": "갱신",
    "waiting for the gateway": "게이트웨이 응답 대기 중",
    "web: {total} stored values refused ({reasons})": "웹: 저장된 값 {total}건 거부 ({reasons})",
    "worst air grade": "최악 대기질 등급",
    "yes": "예",
    "{cls} crossed {line} ({direction})": "{line} 통과: {cls} ({direction})",
    "{cls} entered {zone}": "{zone} 침입: {cls}",
    "{cls} stopped in {zone} ({seconds} s)": "{zone} 정차: {cls} ({seconds}초)",
    "{name}: {rule} cleared, {value} {unit}": "{name}: {rule} 해제, {value} {unit}",
    "{name}: {rule} cleared, {value} {unit} ({what})": "{name}: {rule} 해제, {value} {unit} ({what})",
    "{name}: {rule}, {value} {unit} ({what}) {op} {level}":
        "{name}: {rule}, {value} {unit} ({what}) {op} {level}",
    "{name}: {rule}, {value} {unit} {op} {level}": "{name}: {rule}, {value} {unit} {op} {level}",
    "{name}: {value} {unit} over {threshold}": "{name}: {value} {unit}, 기준 {threshold} 초과",
    "{n} min": "{n}분",
    "{n} min ago": "{n}분 전",
    "{n} people in {zone}": "{zone} 밀집: {n}명",
    "{n} s": "{n}초",
    "{n} s ago": "{n}초 전",
    "{total} rejected since start · {live} gateway reporting":
        "시작 후 {total}건 거부 · 게이트웨이 {live}대 보고 중",
    "경계 Warning": "경계",
    "관심 Attention": "관심",
    "심각 Critical": "심각",
    "정상 Normal": "정상",
    "주의 Caution": "주의",
}

PO = Path(__file__).resolve().parent.parent / "translations" / "ko" / "LC_MESSAGES" / "messages.po"


def apply(path: Path = PO) -> list[str]:
    """Fill empty or fuzzy Korean messages from KO; returns the msgids still without Korean."""
    with path.open("rb") as f:
        catalog = read_po(f, locale="ko")
    missing = []
    for m in catalog:
        if not m.id:
            continue
        key = m.id[0] if isinstance(m.id, tuple) else m.id
        text = KO.get(key)
        have = m.string[0] if isinstance(m.string, tuple) else m.string
        if text and (not have or m.fuzzy):
            m.string = (text,) if isinstance(m.id, tuple) else text
            m.flags.discard("fuzzy")
        elif not have:
            missing.append(key)
    with path.open("wb") as f:
        write_po(f, catalog, width=0, sort_output=True, include_previous=False)
    return missing


if __name__ == "__main__":
    left = apply()
    for key in left:
        print(f"no Korean for: {key!r}", file=sys.stderr)
    sys.exit(1 if left else 0)
