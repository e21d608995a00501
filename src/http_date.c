/* HTTP dates (RFC 9110 section 5.6.7). See include/gust/http.h.
 *
 * Calendar arithmetic is done here on the proleptic Gregorian calendar
 * (days <-> civil date in closed form), so formatting needs neither
 * gmtime_r nor the locale, and parsing needs no timegm. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "gust/http.h"

static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};
static const char *const long_day_names[7] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                        "May", "Jun", "Jul", "Aug",
                                        "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of y-m-d (m 1-12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

int gust_http_date_format(time_t t, char buf[GUST_HTTP_DATE_SIZE])
{
    /* Years 0000-9999 fit the four digits of the format. */
    static const int64_t min_t = -62167219200LL;  /* 0000-01-01T00:00:00Z */
    static const int64_t max_t = 253402300799LL;  /* 9999-12-31T23:59:59Z */
    int64_t s = (int64_t)t;
    if (s < min_t || s > max_t) {
        buf[0] = '\0';
        return -EINVAL;
    }
    int64_t days = floor_div(s, 86400);
    int64_t secs = s - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
    memcpy(buf, day_names[wday], 3);
    buf[3] = ',';
    buf[4] = ' ';
    put2(buf + 5, d);
    buf[7] = ' ';
    memcpy(buf + 8, month_names[m - 1], 3);
    buf[11] = ' ';
    put2(buf + 12, (int)(y / 100));
    put2(buf + 14, (int)(y % 100));
    buf[16] = ' ';
    put2(buf + 17, (int)(secs / 3600));
    buf[19] = ':';
    put2(buf + 20, (int)(secs / 60 % 60));
    buf[22] = ':';
    put2(buf + 23, (int)(secs % 60));
    memcpy(buf + 25, " GMT", 5); /* NUL included */
    return 0;
}

/* Reads n digits at p into *v. */
static bool digits(const char *p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        x = x * 10 + (p[i] - '0');
    }
    *v = x;
    return true;
}

static int month_of(const char *p)
{
    for (int i = 0; i < 12; i++) {
        if (memcmp(p, month_names[i], 3) == 0)
            return i + 1;
    }
    return 0;
}

static bool short_day(const char *p)
{
    for (int i = 0; i < 7; i++) {
        if (memcmp(p, day_names[i], 3) == 0)
            return true;
    }
    return false;
}

/* "hh:mm:ss" at p. */
static bool time_of_day(const char *p, int *h, int *mi, int *s)
{
    return digits(p, 2, h) && p[2] == ':' && digits(p + 3, 2, mi) &&
           p[5] == ':' && digits(p + 6, 2, s) && *h <= 23 && *mi <= 59 &&
           *s <= 60;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int finish(int64_t y, int m, int d, int h, int mi, int s, time_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    if (m < 1 || d < 1 || d > mdays[m - 1] + (m == 2 && leap(y)))
        return -EINVAL;
    if (s == 60)
        s = 59; /* a leap second, which time_t cannot represent */
    int64_t t = days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s;
    if ((int64_t)(time_t)t != t)
        return -EINVAL;
    *out = (time_t)t;
    return 0;
}

int gust_http_date_parse(gust_str str, time_t *out)
{
    const char *p = str.ptr;
    size_t n = str.len;
    int d, m, y, h, mi, s;
    if (!p || n < 24)
        return -EINVAL;
    if (n == 29 && p[3] == ',') {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (!short_day(p) || p[4] != ' ' || !digits(p + 5, 2, &d) ||
            p[7] != ' ' || !(m = month_of(p + 8)) || p[11] != ' ' ||
            !digits(p + 12, 4, &y) || p[16] != ' ' ||
            !time_of_day(p + 17, &h, &mi, &s) || memcmp(p + 25, " GMT", 4) != 0)
            return -EINVAL;
        return finish(y, m, d, h, mi, s, out);
    }
    if (n == 24 && p[3] == ' ') {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        if (!short_day(p) || !(m = month_of(p + 4)) || p[7] != ' ')
            return -EINVAL;
        if (p[8] == ' ') {
            if (!digits(p + 9, 1, &d))
                return -EINVAL;
        } else if (!digits(p + 8, 2, &d)) {
            return -EINVAL;
        }
        if (p[10] != ' ' || !time_of_day(p + 11, &h, &mi, &s) ||
            p[19] != ' ' || !digits(p + 20, 4, &y))
            return -EINVAL;
        return finish(y, m, d, h, mi, s, out);
    }
    /* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT */
    const char *comma = memchr(p, ',', n < 10 ? n : 10);
    if (!comma)
        return -EINVAL;
    size_t dl = (size_t)(comma - p);
    bool day_ok = false;
    for (int i = 0; i < 7; i++) {
        if (strlen(long_day_names[i]) == dl &&
            memcmp(p, long_day_names[i], dl) == 0)
            day_ok = true;
    }
    const char *q = comma + 1;
    if (!day_ok || n != dl + 24 || q[0] != ' ' || !digits(q + 1, 2, &d) ||
        q[3] != '-' || !(m = month_of(q + 4)) || q[7] != '-' ||
        !digits(q + 8, 2, &y) || q[10] != ' ' ||
        !time_of_day(q + 11, &h, &mi, &s) || memcmp(q + 19, " GMT", 4) != 0)
        return -EINVAL;
    /* RFC 9110: a two-digit year more than 50 years in the future is the
     * most recent past year with the same last two digits. */
    int64_t now_y;
    int now_m, now_d;
    civil_from_days(floor_div((int64_t)time(NULL), 86400), &now_y, &now_m,
                    &now_d);
    int64_t year = now_y - now_y % 100 + y;
    if (year > now_y + 50)
        year -= 100;
    return finish(year, m, d, h, mi, s, out);
}
